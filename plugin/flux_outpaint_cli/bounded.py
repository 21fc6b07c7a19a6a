"""Work a deadline or Ctrl-C may leave behind: reading an input that is not a regular file,
and decoding a result.

Two things can keep the CLI waiting for ever or for minutes whatever ``--timeout`` says: an
input that never ends or never starts (standard input from ``/dev/zero``, a FIFO with no
writer, ``<(…)`` of a command that hangs) and a decoder given a file built to be slow (a
progressive JPEG of many scans; ``imageinfo`` refuses the known shapes first, this is the
backstop).  Both run here in a daemon thread that the waiting thread may abandon: it checks
the deadline and the cancel flag every ``SLICE_S`` and raises, and the abandoned thread ends
with the process.  A blocked ``read`` cannot be interrupted portably (Windows has neither
FIFOs nor ``select`` on pipes), but it can be left behind everywhere.

``read_stream`` reads with a cap: ``MAX_INPUT_BYTES`` for any input, and, once the first
``HEAD_BYTES`` show an image header, what that image could possibly take (its pixels at
eight bytes each, plus ``SLACK_BYTES`` of metadata); bytes that are no image are refused
after the head, so ``- < /dev/zero`` ends after 64 KiB.  A regular file larger than
``MAX_INPUT_BYTES`` is refused by its size before it is read.
"""

from __future__ import annotations

import io
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

from flux_outpaint.errors import CancelledError, InputError, OutpaintTimeoutError
from PIL import Image

__all__ = [
    "HEAD_BYTES",
    "MAX_INPUT_BYTES",
    "SLACK_BYTES",
    "SLICE_S",
    "abandonable",
    "check_file_size",
    "is_regular",
    "read_input",
    "read_stream",
]

# A 200 MP photo (photo.MAX_INPUT_PIXELS) as uncompressed 8-bit RGBA is 800 MB.
MAX_INPUT_BYTES = 1024 * 1024 * 1024
HEAD_BYTES = 64 * 1024
# Beyond its pixels, what an image file may carry (profiles, previews, metadata).
SLACK_BYTES = 64 * 1024 * 1024
SLICE_S = 0.1
_CHUNK = 1024 * 1024

T = TypeVar("T")


def abandonable(
    fn: Callable[[], T],
    *,
    deadline: float | None,
    cancel: threading.Event | None = None,
    what: str,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """``fn()`` in a daemon thread; its value, or its exception.  At the ``deadline`` (a
    ``clock()`` value) an OutpaintTimeoutError naming ``what``, on ``cancel`` a
    CancelledError; either leaves the thread behind."""
    done = threading.Event()
    box: dict[str, object] = {}

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name=f"bounded-{what[:16]}", daemon=True).start()
    while not done.wait(SLICE_S):
        if cancel is not None and cancel.is_set():
            raise CancelledError("Cancelled")
        if deadline is not None and clock() >= deadline:
            raise OutpaintTimeoutError(f"{what} did not finish within the time limit")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def _limit_for(head: bytes) -> int | None:
    """What an image starting with ``head`` may take at most; None if it is no image."""
    try:
        with Image.open(io.BytesIO(head)) as image:
            width, height = image.size
    except Exception:  # noqa: BLE001 - any failure to read a header: not an image we know
        return None
    return min(MAX_INPUT_BYTES, int(width) * int(height) * 8 + SLACK_BYTES)


def read_stream(stream: BinaryIO, name: str) -> bytes:
    """Every byte of ``stream`` up to the caps in the module docstring; InputError past them."""
    parts: list[bytes] = []
    total, limit = 0, MAX_INPUT_BYTES
    judged = False
    while True:
        chunk = stream.read(_CHUNK if judged else HEAD_BYTES - total)
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
        if not judged and total >= HEAD_BYTES:
            found = _limit_for(b"".join(parts))
            if found is None:
                raise InputError(f"Not an image (or unreadable): {name}")
            limit, judged = found, True
        if total > limit:
            raise InputError(
                f"more than {_size(limit)} without an end; not an image this size could be"
            )
    return b"".join(parts)


def is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return True  # let the ordinary open say what is wrong with it


def check_file_size(path: Path, name: str) -> None:
    """InputError for a regular file larger than ``MAX_INPUT_BYTES`` (the caller's line
    names ``name``)."""
    try:
        info = os.stat(path)
    except OSError:
        return  # the ordinary open says what is wrong with it
    if stat.S_ISREG(info.st_mode) and info.st_size > MAX_INPUT_BYTES:
        raise InputError(f"larger than {_size(MAX_INPUT_BYTES)}; not read")


def read_input(path: Path | None, name: str, stdin: BinaryIO, deadline_s: float) -> bytes:
    """Standard input (``path`` None) or a non-regular file (FIFO, device, ``<(…)``), read
    through ``read_stream`` within ``deadline_s`` seconds; a regular file by its size first,
    then whole."""
    if path is not None and is_regular(path):
        check_file_size(path, name)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise InputError(f"Cannot read {name}: {exc.strerror or exc}") from None

    def read() -> bytes:
        if path is None:
            return read_stream(stdin, name)
        try:
            with open(path, "rb", buffering=0) as stream:  # a FIFO's open waits for a writer
                return read_stream(stream, name)
        except OSError as exc:
            raise InputError(f"Cannot read {name}: {exc.strerror or exc}") from None

    try:
        return abandonable(read, deadline=time.monotonic() + deadline_s, what=f"Reading {name}")
    except OutpaintTimeoutError:
        raise InputError(f"no complete image arrived within {deadline_s:g} s (--timeout)") from None


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 else f"{n // 1024} KiB"
