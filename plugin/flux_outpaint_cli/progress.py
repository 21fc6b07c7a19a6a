"""Progress display for the CLI: one live line per job on a terminal, plain lines otherwise.

On a terminal each input has one line, redrawn in place (at most ``REDRAW_INTERVAL_S``
apart), and messages (``say``) are printed above the lines so they never tear them.
Elsewhere (a pipe, a log file) each change of step is one plain line.  Network phases come
from the core (``flux_outpaint.status.Phase``); the local steps before and after them (reading,
composing, writing) are named here.  Everything goes to one stream, standard error by
default, so standard output stays free for results (``-o -``).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import TextIO

from flux_outpaint.status import Phase

# Redrawing faster than this only burns CPU; people read at a few frames a second.
REDRAW_INTERVAL_S = 0.1
BAR_WIDTH = 16
READING, COMPOSING, WRITING = "reading", "composing", "writing"
# The steps a successful job goes through, for the bar's length.
STEPS: tuple[Phase | str, ...] = (
    READING,
    Phase.ENCODING,
    Phase.UPLOADING,
    Phase.SUBMITTING,
    Phase.QUEUED,
    Phase.RUNNING,
    Phase.DOWNLOADING,
    COMPOSING,
    WRITING,
    Phase.DONE,
)


@dataclass
class _Line:
    name: str
    step: Phase | str | None = None  # None: not started yet
    queue_position: int | None = None
    elapsed_s: float = 0.0
    note: str = ""
    request_id: str = ""


class ProgressBoard:
    """Thread-safe; jobs report from worker threads, the board draws from whichever reports.

    ``quiet``: nothing but ``say(..., always=True)`` messages is printed.
    """

    def __init__(
        self,
        names: list[str],
        stream: TextIO | None = None,
        live: bool | None = None,
        quiet: bool = False,
    ):
        self._stream = sys.stderr if stream is None else stream
        self._lines = {name: _Line(name) for name in names}
        self._order = list(names)
        self._live = (self._stream.isatty() if live is None else live) and not quiet
        self._quiet = quiet
        self._lock = threading.Lock()
        self._drawn = 0
        self._last_draw = 0.0
        self._width = min(max((len(n) for n in names), default=8), 40)

    @property
    def live(self) -> bool:
        """True when the lines are redrawn in place (a terminal, not quiet)."""
        return self._live

    def update(
        self,
        name: str,
        step: Phase | str,
        *,
        queue_position: int | None = None,
        elapsed_s: float | None = None,
        note: str = "",
        request_id: str | None = None,
    ) -> None:
        with self._lock:
            line = self._lines[name]
            changed = step != line.step
            line.step, line.queue_position = step, queue_position
            if elapsed_s is not None:
                line.elapsed_s = elapsed_s
            if note or changed:
                line.note = clean(note)
            new_id = bool(request_id) and request_id != line.request_id
            if request_id:
                line.request_id = request_id
            if self._quiet:
                return
            if self._live:
                now = time.monotonic()
                if changed or new_id or now - self._last_draw >= REDRAW_INTERVAL_S:
                    self._draw()
                    self._last_draw = now
            elif changed or new_id:
                self._stream.write(self._plain(line) + "\n")
                self._stream.flush()

    def finish(self, name: str, ok: bool | None, note: str) -> None:
        """``ok``: True done, False failed, None skipped or cancelled."""
        step: Phase | str = Phase.DONE if ok else (Phase.FAILED if ok is False else "skipped")
        if self._live or ok:
            self.update(name, step, note=note)
        else:  # a plain log: the error message that follows says it all
            with self._lock:
                self._lines[name].step = step

    def say(self, text: str, *, always: bool = False) -> None:
        """A message line; on a terminal printed above the live lines, which are redrawn."""
        if self._quiet and not always:
            return
        with self._lock:
            if self._live and self._drawn:
                self._stream.write(f"\x1b[{self._drawn}F\x1b[J")
                self._drawn = 0
            self._stream.write(clean(text) + "\n")
            if self._live:
                self._draw()
            self._stream.flush()

    def _plain(self, line: _Line) -> str:
        pos = f" (queue position {line.queue_position})" if line.queue_position is not None else ""
        shown = line.step == Phase.QUEUED and line.request_id
        rid = f" [request {line.request_id}]" if shown else ""
        note = f": {line.note}" if line.note else ""
        return f"{line.name}: {_word(line.step)}{pos}{rid} {line.elapsed_s:.1f}s{note}"

    def _draw(self) -> None:
        out = []
        if self._drawn:
            out.append(f"\x1b[{self._drawn}F")
        for name in self._order:
            line = self._lines[name]
            step = STEPS.index(line.step) + 1 if line.step in STEPS else 0
            filled = round(BAR_WIDTH * step / len(STEPS))
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            pos = f" #{line.queue_position}" if line.queue_position is not None else ""
            label = name[-self._width :].ljust(self._width)
            rid = f" {line.request_id}" if line.request_id else ""
            text = (
                f"{label} [{bar}] {_word(line.step)}{pos} {line.elapsed_s:5.1f}s{rid} {line.note}"
            )
            out.append("\x1b[2K" + _fit(text) + "\n")
        self._drawn = len(self._order)
        self._stream.write("".join(out))
        self._stream.flush()


def clean(text: str) -> str:
    """Printable characters only: server text must not move the cursor or set a title."""
    return "".join(ch if ch.isprintable() else " " for ch in text)


def _fit(text: str) -> str:
    """One terminal row: a wrapped line would break the in-place redraw."""
    try:
        import shutil

        width = shutil.get_terminal_size((100, 24)).columns
    except (OSError, ValueError):
        width = 100
    return text[: max(20, width - 1)]


def _word(step: Phase | str | None) -> str:
    if step is None:
        return "waiting"
    return step.value if isinstance(step, Phase) else step
