"""Progress display for the CLI: one live line per job on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import TextIO

from outpaint.status import Phase

# Redrawing faster than this only burns CPU; people read at a few frames a second.
REDRAW_INTERVAL_S = 0.1
BAR_WIDTH = 16
# The steps a successful job goes through, for the bar's length.
STEPS = (
    Phase.ENCODING,
    Phase.UPLOADING,
    Phase.SUBMITTING,
    Phase.QUEUED,
    Phase.RUNNING,
    Phase.DOWNLOADING,
    Phase.DONE,
)


@dataclass
class _Line:
    name: str
    phase: Phase | None = None  # None: not started yet
    queue_position: int | None = None
    elapsed_s: float = 0.0
    note: str = ""


class ProgressBoard:
    """Thread-safe; jobs report from worker threads, the board draws from whichever reports."""

    def __init__(self, names: list[str], stream: TextIO = sys.stderr, live: bool | None = None):
        self._lines = {name: _Line(name) for name in names}
        self._order = list(names)
        self._stream = stream
        self._live = stream.isatty() if live is None else live
        self._lock = threading.Lock()
        self._drawn = 0
        self._last_draw = 0.0
        self._width = min(max((len(n) for n in names), default=8), 40)

    def update(
        self,
        name: str,
        phase: Phase,
        *,
        queue_position: int | None = None,
        elapsed_s: float = 0.0,
        note: str = "",
    ) -> None:
        with self._lock:
            line = self._lines[name]
            changed = phase != line.phase
            line.phase, line.queue_position, line.elapsed_s = phase, queue_position, elapsed_s
            if note:
                line.note = note
            if self._live:
                now = time.monotonic()
                if changed or now - self._last_draw >= REDRAW_INTERVAL_S:
                    self._draw()
                    self._last_draw = now
            elif changed:
                self._stream.write(self._plain(line) + "\n")
                self._stream.flush()

    def finish(self, name: str, ok: bool, note: str) -> None:
        self.update(
            name,
            Phase.DONE if ok else Phase.FAILED,
            note=note,
            elapsed_s=self._lines[name].elapsed_s,
        )
        if self._live:
            with self._lock:
                self._draw()

    def _plain(self, line: _Line) -> str:
        pos = f" (queue position {line.queue_position})" if line.queue_position is not None else ""
        note = f": {line.note}" if line.note else ""
        return f"{line.name}: {_word(line.phase)}{pos} {line.elapsed_s:.1f}s{note}"

    def _draw(self) -> None:
        out = []
        if self._drawn:
            out.append(f"\x1b[{self._drawn}F")
        for name in self._order:
            line = self._lines[name]
            step = STEPS.index(line.phase) + 1 if line.phase in STEPS else 0
            filled = round(BAR_WIDTH * step / len(STEPS))
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            pos = f" #{line.queue_position}" if line.queue_position is not None else ""
            label = name[-self._width :].ljust(self._width)
            text = f"{label} [{bar}] {_word(line.phase)}{pos} {line.elapsed_s:5.1f}s {line.note}"
            out.append("\x1b[2K" + text[:200] + "\n")
        self._drawn = len(self._order)
        self._stream.write("".join(out))
        self._stream.flush()


def _word(phase: Phase | None) -> str:
    return "waiting" if phase is None else phase.value
