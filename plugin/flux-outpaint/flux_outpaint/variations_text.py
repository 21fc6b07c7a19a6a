"""What people read about takes: their names, one wait-window row per take, the line after
Cancel.

Pure text from ``variations.take_state`` keys, so a window (the GIMP plug-in's) and the tests
read the same words; translated through ``i18n`` like every user-facing string of the core.
"""

from __future__ import annotations

from collections.abc import Sequence

from .i18n import _, ngettext
from .status import Progress
from .variations import take_state, take_status

__all__ = ["cancel_summary", "layer_name", "number", "row_text"]


def number(index: int) -> str:
    """A take's number as people see it: "#1", "#2", …"""
    return _("#{number}").format(number=index + 1)


def layer_name(index: int) -> str:
    """A take's layer: its number first, so a narrow Layers dock still tells them apart."""
    return _("{number} Outpaint").format(number=number(index))


def row_text(progress: Progress | None, log: str | None = None) -> str:
    """One take's row: its state, and while it runs, its own latest log line."""
    text = take_status(progress)
    if log and take_state(progress) == "running":
        return _("{state}: {log}").format(state=text, log=log)
    return text


def cancel_summary(states: Sequence[str]) -> str:
    """One line once Cancel is done, from each take's state when it was pressed: what was
    cancelled, and whether anything may be billed (queued: removed, not billed; running:
    asked to stop, fal may bill it; finished: billed, and Recover brings it back)."""
    unsent = sum(s in ("waiting", "sending") for s in states)
    queued = sum(s == "queued" for s in states)
    started = sum(s in ("running", "downloading") for s in states)
    finished = sum(s == "done" for s in states)
    parts = []
    if queued:
        parts.append(
            ngettext(
                "{count} request left fal's queue (not billed)",
                "{count} requests left fal's queue (not billed)",
                queued,
            ).format(count=queued)
        )
    if started:
        parts.append(
            ngettext(
                "{count} request had started and was asked to stop (fal may bill it)",
                "{count} requests had started and were asked to stop (fal may bill them)",
                started,
            ).format(count=started)
        )
    if finished:
        parts.append(
            ngettext(
                "{count} request had finished (billed; Recover brings it back)",
                "{count} requests had finished (billed; Recover brings them back)",
                finished,
            ).format(count=finished)
        )
    if unsent:
        parts.append(
            ngettext(
                "{count} request was never sent (not billed)",
                "{count} requests were never sent (not billed)",
                unsent,
            ).format(count=unsent)
        )
    if not parts:
        return _("Outpaint cancelled; nothing was billed.")
    return _("Outpaint cancelled: {what}.").format(what=_("; ").join(parts))
