"""Standard output and error that can die without taking the run with them.

A paid result must not be lost because the terminal went away: ``flux-outpaint … 2>&1 |
head -3`` closes the pipe while the job still waits on fal.  ``guard()`` wraps the text
streams so that a write or flush to a closed or broken stream is dropped (and the stream
pointed at the null device, so Python's own flush at exit stays quiet); the run goes on,
writes its output and its journal.  The binary ``buffer`` is not guarded: an image written
to standard output that cannot be written is a failure the run must report (the journal
then keeps the request as unplaced, recoverable).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from typing import Any, TextIO

__all__ = ["GuardedStream", "guard"]


class GuardedStream:
    """A text stream whose writes and flushes never raise once it is gone."""

    def __init__(self, stream: TextIO, *, absent: bool = False) -> None:
        self._stream = stream
        self.dead = absent
        self._absent = absent  # the process started without it (a stand-in on the null device)

    @property
    def buffer(self) -> Any:
        """The binary stream, unguarded (an image written there must fail loudly)."""
        if self._absent:
            raise OSError(errno.EBADF, "the stream is closed")
        return self._stream.buffer

    def write(self, text: str) -> int:
        if self.dead:
            return len(text)
        try:
            return self._stream.write(text)
        except (OSError, ValueError):  # EPIPE, EBADF, or "I/O operation on closed file"
            self._died()
            return len(text)

    def flush(self) -> None:
        if self.dead:
            return
        try:
            self._stream.flush()
        except (OSError, ValueError):
            self._died()

    def isatty(self) -> bool:
        if self.dead:
            return False
        try:
            return self._stream.isatty()
        except (OSError, ValueError):
            return False

    def __getattr__(self, name: str) -> Any:  # encoding, buffer, fileno, …
        return getattr(self._stream, name)

    def _died(self) -> None:
        self.dead = True
        # What is still buffered would fail again at exit ("Exception ignored …"): send
        # the descriptor to the null device instead.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            fd = self._stream.fileno()
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, fd)
            finally:
                os.close(null)


def guard() -> None:
    """Wrap ``sys.stdout`` and ``sys.stderr`` (once) for the rest of the process.  A stream
    the process was started without (descriptor closed: Python makes it None) becomes a
    dead one: what would go there is dropped."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if isinstance(stream, GuardedStream):
            continue
        if stream is None:
            null = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - for the process
            setattr(sys, name, GuardedStream(null, absent=True))
        else:
            setattr(sys, name, GuardedStream(stream))
