"""Host-side pieces the plug-in's real-GIMP tests share (no tests of its own).

The code that runs inside GIMP lives in tests/gimp/inside/ (``inside/prelude.py`` builds
test images, calls the plug-in through the PDB like any script would, and measures results
with GIMP's own calls only).  This side starts the local fal server, passes each batch its
parameters as data, and holds expectations computed independently of the plug-in's glue.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import fal_local

from .sandbox import BatchResult, GimpSession

# A key that is easy to grep for: it must never show up in GIMP's files or in messages.
KEY = "flux-test-key-7f3a9c-SECRET"


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


def ramp(blend: int) -> list[int]:
    # Independent of outpaint.seam on purpose: the documented mask profile, recomputed.
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
    "local_server",
    "one_line",
    "rle",
    "run",
    "server_env",
    "words",
]
