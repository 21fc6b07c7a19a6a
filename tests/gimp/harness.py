"""Host-side pieces the plug-in's real-GIMP tests share (no tests of its own).

The code that runs inside GIMP lives in tests/gimp/inside/ (``inside/prelude.py`` builds
test images, calls the plug-in through the PDB like any script would, and measures results
with GIMP's own calls only).  This side starts the local fal server, passes each batch its
parameters as data, and holds expectations computed independently of the plug-in's glue.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import flux_outpaint_fal_local as fal_local

from .sandbox import BatchResult, GimpSession

# A key that is easy to grep for: it must never show up in GIMP's files or in messages.
KEY = "flux-test-key-7f3a9c-SECRET"
DISPLAY_WAIT_S = 60  # a GUI driver's Xvfb reports its display within this
FILE_POLL_S = 0.2


@contextlib.contextmanager
def local_server(**options) -> Iterator[fal_local.LocalServer]:
    server = fal_local.start_server(keys=[KEY], **options)
    try:
        yield server
    finally:
        server.stop()


def server_env(server, key: str | None = KEY, **extra: str) -> dict[str, str]:
    env = {"FAL_QUEUE_URL": server.base_url if server is not None else "http://127.0.0.1:9"}
    if key is not None:
        env["FAL_KEY"] = key
    return {**env, **extra}


def run(
    gimp: GimpSession,
    batch: str,
    params: dict | None,
    env: dict[str, str],
    timeout: float = 600,
    **options: bool,
) -> dict:
    """Run one batch of inside/ (see ``GimpSession.run_batch``); its report, or a failure."""
    result: BatchResult = gimp.run_batch(batch, params, env=env, timeout=timeout, **options)
    return result.check()


def wait_for_file(path: Path, timeout: float, *, unless: Path | None = None) -> bool:
    """Poll until ``path`` exists; False when ``timeout`` seconds pass first, or as soon as
    ``unless`` exists instead."""
    end = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > end or (unless is not None and unless.exists()):
            return False
        time.sleep(FILE_POLL_S)
    return True


@contextlib.contextmanager
def gui_driver(gimp: GimpSession, script: str, params: dict, timeout: float) -> Iterator[str]:
    """Run the driver ``inside/<script>`` (the chroot's python3, in the session folder) beside
    what the ``with`` block runs; yields the X display once the driver's Xvfb answers.

    Leaving the block writes ``batch-done`` (the driver keeps Xvfb until then) and waits for
    the driver; what it saw is in its ``driver.json`` in the session folder.
    """
    argv = ["python3", f"{gimp.inside()}/{script}", json.dumps(params)]
    thread = threading.Thread(target=lambda: gimp.run(argv, timeout=timeout), name=script)
    thread.start()
    try:
        display, seen = gimp.host_dir / "display", gimp.host_dir / "driver.json"
        if not wait_for_file(display, DISPLAY_WAIT_S, unless=seen):
            said = seen.read_text() if seen.exists() else "nothing"
            raise AssertionError(f"Xvfb did not start for {script}: the driver said {said}")
        yield display.read_text().strip()
    finally:
        (gimp.host_dir / "batch-done").write_text("1")
        thread.join(timeout + 30)


def ramp(blend: int) -> list[int]:
    # Independent of flux_outpaint.seam on purpose: the documented mask profile, recomputed.
    return [round(255 * (blend - d) / (blend + 1)) for d in range(blend)]


def expected_line(
    length: int, start: int, size: int, low: bool, high: bool, blend: int
) -> list[int]:
    line = [255] * length
    for i in range(max(0, start), min(length, start + size)):
        d_low, d_high = i - start, start + size - 1 - i
        value = 0
        if low and d_low < blend:
            value = max(value, ramp(blend)[d_low])
        if high and d_high < blend:
            value = max(value, ramp(blend)[d_high])
        line[i] = value
    return line


def rle(values: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for v in values:
        if out and out[-1][0] == v:
            out[-1][1] += 1
        else:
            out.append([v, 1])
    return out


def files_containing(folder: Path, needle: str) -> list[str]:
    hits = []
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file() and not path.is_symlink() and needle.encode() in path.read_bytes():
                hits.append(str(path.relative_to(folder)))
    return hits


def one_line(message: object) -> bool:
    return isinstance(message, str) and bool(message.strip()) and "\n" not in message


def words(message: str) -> str:
    return re.sub(r"\s+", " ", message.lower())


__all__ = [
    "KEY",
    "expected_line",
    "files_containing",
    "gui_driver",
    "local_server",
    "one_line",
    "rle",
    "run",
    "server_env",
    "wait_for_file",
    "words",
]
