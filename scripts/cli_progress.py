"""Progress display for the CLI: one live line per job on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import TextIO

# Redrawing faster than this only burns CPU; people read at a few frames a second.
REDRAW_INTERVAL_S = 0.1
BAR_WIDTH = 16
PHASE_ORDER = ("encoding", "uploading", "submitting", "queued", "running", "downloading", "done")


@dataclass
class _Line:
    name: str
    phase: str = "waiting"
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

    def update(self, name: str, phase: str, *, queue_position: int | None = None,
               elapsed_s: float = 0.0, note: str = "") -> None:
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
        self.update(name, "done" if ok else "failed", note=note,
                    elapsed_s=self._lines[name].elapsed_s)
        if self._live:
            with self._lock:
                self._draw()

    def _plain(self, line: _Line) -> str:
        pos = f" (queue position {line.queue_position})" if line.queue_position is not None else ""
        note = f": {line.note}" if line.note else ""
        return f"{line.name}: {line.phase}{pos} {line.elapsed_s:.1f}s{note}"

    def _draw(self) -> None:
        out = []
        if self._drawn:
            out.append(f"\x1b[{self._drawn}F")
        for name in self._order:
            line = self._lines[name]
            step = PHASE_ORDER.index(line.phase) + 1 if line.phase in PHASE_ORDER else 0
            filled = round(BAR_WIDTH * step / len(PHASE_ORDER))
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            pos = f" #{line.queue_position}" if line.queue_position is not None else ""
            label = name[-self._width:].ljust(self._width)
            text = f"{label} [{bar}] {line.phase}{pos} {line.elapsed_s:5.1f}s {line.note}"
            out.append("\x1b[2K" + text[:200] + "\n")
        self._drawn = len(self._order)
        self._stream.write("".join(out))
        self._stream.flush()
