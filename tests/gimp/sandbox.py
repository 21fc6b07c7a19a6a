"""The real-GIMP tests' GIMP sessions: scripts/gimp_session.py's, with the tests' own batches.

``GimpSession`` here copies inside/ (the batches and drivers that run in the chroot) beside
the session's runner; everything else (profiles, installing the plug-in, running GIMP) is
gimp_session's, which bench_gimp.py uses too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from script_modules import script

gimp_sandbox = script("gimp_sandbox")
gimp_session = script("gimp_session")  # after gimp_sandbox, which it imports

INSIDE = Path(__file__).resolve().parent / "inside"  # copied into each session folder
PLUGIN_SOURCE = gimp_session.PLUGIN_SOURCE
BatchResult = gimp_session.BatchResult
build_vendor = gimp_session.build_vendor
install_plugin = gimp_session.install_plugin


class GimpSession(gimp_session.GimpSession):
    """A session whose inside/ holds the tests' batches (tests/gimp/inside/)."""

    def __init__(
        self, name: str, *, vendor: Callable[[], Path] | None = None, keep: bool | None = None
    ):
        super().__init__(name, vendor=vendor, keep=keep, batches=(INSIDE,))
