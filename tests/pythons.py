"""Other Python interpreters for the tests that run code on the versions we promise (install.py
on 3.9, the vendored httpx on GIMP's 3.10 and 3.13), found wherever this machine keeps them.

``find(version)`` looks on PATH (``python3.10``), then in pyenv's versions folder
(``$PYENV_ROOT``, else ``~/.pyenv``), and returns the first interpreter that really runs and
reports that version: a pyenv shim for a version that is not active does not count.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path


@functools.cache
def find(version: str) -> Path | None:
    """An interpreter of ``version`` ("3.10"), or None when this machine has none."""
    name = f"python{version}"
    candidates = [Path(p) for p in [shutil.which(name)] if p]
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates += sorted(root.glob(f"versions/{version}.*/bin/{name}"), reverse=True)
    return next((c for c in candidates if _reports(c, version)), None)


def _reports(exe: Path, version: str) -> bool:
    try:
        done = subprocess.run(
            [str(exe), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except OSError:
        return False
    return done.returncode == 0 and done.stdout.strip() == version
