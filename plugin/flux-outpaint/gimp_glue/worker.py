"""The network job in a worker thread while the main thread keeps GIMP responsive.

libgimp's wire to the core is one pipe with no lock: a Gimp call from a second thread
crashes or deadlocks the plug-in.  So the worker only runs ``flux_outpaint.pipeline.run_job`` or
``flux_outpaint.variations.run_variations`` (httpx, encoding, the journal) and stores its latest
``Progress`` (per take, for variations); the main thread pumps
events, shows that progress, and is the only one to call Gimp, Gegl or Gtk.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from flux_outpaint.errors import CancelledError
from flux_outpaint.status import Progress
from gi.repository import Gimp, GLib

POLL_S = 0.05
# After Cancel the worker gets this long to tell fal (the protocol's cancel) before it is
# abandoned; it is a daemon thread, so an abandoned one never holds GIMP up.  Variations cancel
# their requests side by side; even one after the other, 4 × retry.CANCEL_BUDGET_S (2 s) fit.
CANCEL_GRACE_S = 15.0


class UserCancelled(CancelledError):
    """The person pressed Cancel: GIMP's CANCEL status, no error dialog."""


class Report(Protocol):
    """Where the worker tells its progress: ``take``, which of several takes it is about."""

    def __call__(self, progress: Progress, take: int | None = None) -> None: ...


_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)


def phase_text(progress: Progress | None) -> str:
    """One status line (None = not started yet)."""
    return "Starting…" if progress is None else progress.describe()


def status_text(job: Background[object]) -> str:
    """The status bar's line: the job's phase, or with several takes how many are where
    (the latest report may be any take's, so it alone would jump between them)."""
    takes = job.takes
    if not takes:
        return phase_text(job.progress)
    from flux_outpaint.variations import takes_summary  # loaded with the network half

    return f"{takes_summary(takes, job.count)}… {int(time.monotonic() - job.started)} s"


class Background(Generic[_T_co]):
    """Runs ``fn(report, cancel)`` once in a daemon thread."""

    def __init__(self, fn: Callable[[Report, threading.Event], _T_co], count: int = 1) -> None:
        self._fn = fn
        self.count = count  # takes (variations) the job runs
        self.cancel = threading.Event()
        self.progress: Progress | None = None  # one reference assignment: atomic under the GIL
        # variations: each take's latest progress (replaced whole, so the main thread never
        # iterates a dict another thread is changing)
        self.takes: dict[int, Progress] = {}
        self._takes_lock = threading.Lock()
        self.last_log: str | None = None
        self._result: list[_T_co] = []  # the value, once made
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="outpaint-job", daemon=True)
        self.started = time.monotonic()

    def report(self, progress: Progress, take: int | None = None) -> None:
        """The latest progress; ``take``: which of several takes (variations) it is about,
        reported from the takes' own threads."""
        if take is not None:
            with self._takes_lock:
                self.takes = {**self.takes, take: progress}
        self.progress = progress
        if progress.log_line:
            self.last_log = progress.log_line

    def _run(self) -> None:
        try:
            self._result.append(self._fn(self.report, self.cancel))
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread as is
            self._error = exc

    def start(self) -> Background[_T_co]:
        self._thread.start()
        return self

    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def outcome(self) -> _T_co:
        if self._error is not None:
            raise self._error
        return self._result[0]


def pump_glib() -> None:
    ctx = GLib.MainContext.default()
    while ctx.pending():
        ctx.iteration(False)


def drive(
    job: Background[object],
    tick: Callable[[], None] = pump_glib,
    stopped: Callable[[], bool] = lambda: False,
) -> None:
    """On the main thread until the job ends or ``stopped()``: GIMP's status-bar progress
    follows the job's phase, and ``tick`` (pumping events, refreshing a dialog) runs each turn."""
    Gimp.progress_init("Outpainting…")
    shown = None
    try:
        while job.alive() and not stopped():
            job.join(POLL_S)
            tick()
            text = status_text(job)
            if text != shown:
                Gimp.progress_set_text(text)
                shown = text
            Gimp.progress_pulse()
    finally:
        Gimp.progress_end()


def wait_quietly(job: Background[_T]) -> _T:
    """Non-interactive: status-bar progress only (nothing in batch mode), no window."""
    drive(job)
    return job.outcome()


def finish_after_cancel(job: Background[object], pump: Callable[[], None] = pump_glib) -> None:
    """Give the worker a moment to send fal the cancel; never wait forever."""
    job.cancel.set()
    end = time.monotonic() + CANCEL_GRACE_S
    while job.alive() and time.monotonic() < end:
        job.join(POLL_S)
        pump()
