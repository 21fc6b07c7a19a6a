"""SIGTERM and SIGHUP end a run the way the first Ctrl-C does.

A service manager stopping the CLI (SIGTERM) or a closed terminal (SIGHUP) would otherwise
kill it at once: no cancel on fal for a paid request, its journal entry left at
``submitted``, no line naming it, a half-written ``.part`` file left behind.  While
``handled()`` is active in the main thread, either signal raises ``Stopped`` there, a
KeyboardInterrupt that carries its number, so the one Ctrl-C path cancels, journals, names
the requests and cleans up; the exit status is then ``128 + number`` (143, 129) as a shell
reports a process ended by that signal.

Each signal is used only where the platform has it (Windows has no SIGHUP, and its SIGTERM
is never delivered by the system): ``STOP_SIGNALS`` names them, ``available()`` says which
exist here, and a missing one is simply not handled.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from .exits import EXIT_INTERRUPTED

__all__ = ["STOP_SIGNALS", "Stopped", "available", "exit_code", "handled", "on_every_stop"]

STOP_SIGNALS = ("SIGTERM", "SIGHUP")


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived; ``signum`` is its number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def available() -> list[int]:
    """The numbers of ``STOP_SIGNALS`` this platform has."""
    found = (getattr(signal, name, None) for name in STOP_SIGNALS)
    return [int(sig) for sig in found if sig is not None]


def exit_code(exc: BaseException) -> int:
    """128 + the signal's number for ``Stopped``; 130 for a Ctrl-C."""
    return 128 + exc.signum if isinstance(exc, Stopped) else EXIT_INTERRUPTED


def _raise(signum: int, frame: Any) -> None:
    raise Stopped(signum)


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """Inside the block (main thread only), SIGTERM and SIGHUP raise ``Stopped``."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}
    for sig in available():
        with contextlib.suppress(OSError, ValueError):  # one the platform will not let us catch
            previous[sig] = signal.signal(sig, _raise)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            with contextlib.suppress(OSError, ValueError, TypeError):
                signal.signal(sig, handler)


def on_every_stop(action: Callable[[int], None]) -> None:
    """From now on Ctrl-C, SIGTERM and SIGHUP all call ``action(exit status)``: the second
    interruption of a run, which quits at once."""
    for sig in [int(signal.SIGINT), *available()]:
        with contextlib.suppress(OSError, ValueError):
            signal.signal(sig, lambda signum, _frame: action(128 + signum))
