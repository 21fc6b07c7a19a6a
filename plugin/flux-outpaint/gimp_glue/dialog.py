"""The windows: the settings dialog, the API-key prompt and the wait dialog.

Only interactive runs get here; non-interactive and last-values runs never open a window.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

import gi

gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
from flux_outpaint.variations import take_status  # noqa: E402
from gi.repository import GimpUi, Gtk  # noqa: E402

from . import worker  # noqa: E402

if TYPE_CHECKING:
    from flux_outpaint.status import Progress
    from gi.repository import Gimp

_T = TypeVar("_T")

PLUG_IN = "flux-outpaint"
TITLE = "Outpaint (FLUX.2 pro)"
# 3.2 shows a two-option choice as radio buttons, 3.0 as a combo: force one look.
_COMBOS = ("mode", "output-format")


def _init_ui() -> None:
    GimpUi.init(PLUG_IN)


def _pump() -> None:
    while Gtk.events_pending():
        Gtk.main_iteration_do(False)


def settings(
    procedure: Gimp.Procedure, config: Gimp.ProcedureConfig, estimate: Callable[[], str]
) -> bool:
    """The procedure's own dialog plus a live line (output size, downscale, cost)."""
    _init_ui()
    dlg = GimpUi.ProcedureDialog.new(procedure, config, TITLE)
    for name in _COMBOS:
        dlg.get_widget(name, Gtk.ComboBox.__gtype__)
    dlg.fill(None)
    line = Gtk.Label(xalign=0.0)
    line.set_line_wrap(True)
    line.set_max_width_chars(60)
    line.set_selectable(True)
    line.set_margin_top(8)  # apart from the form rows above it
    dlg.get_content_area().pack_end(line, False, False, 6)
    line.show()

    def refresh(*_args: object) -> None:
        line.set_text(estimate())

    handler = config.connect("notify", refresh)
    refresh()
    try:
        return bool(dlg.run())
    finally:
        config.disconnect(handler)
        dlg.destroy()


def ask_api_key() -> tuple[str, bool] | None:
    """(key, remember) from a password entry, or None when cancelled or left empty."""
    _init_ui()
    dlg = GimpUi.Dialog(title="fal API key", role="flux-outpaint-key")
    dlg.add_button("_Cancel", Gtk.ResponseType.CANCEL)
    dlg.add_button("_OK", Gtk.ResponseType.OK)
    dlg.set_default_response(Gtk.ResponseType.OK)
    box = dlg.get_content_area()
    box.set_spacing(8)
    box.set_border_width(12)
    intro = Gtk.Label(
        xalign=0.0,
        label="Outpainting runs on fal.ai. Paste your fal API key "
        "(fal.ai dashboard, Keys). It is sent only to fal.",
    )
    intro.set_line_wrap(True)
    intro.set_max_width_chars(50)
    entry = Gtk.Entry(visibility=False, activates_default=True)
    entry.set_input_purpose(Gtk.InputPurpose.PASSWORD)
    entry.set_width_chars(40)
    remember = Gtk.CheckButton.new_with_mnemonic("_Remember the key on this computer")
    remember.set_active(True)
    for widget in (intro, entry, remember):
        box.pack_start(widget, False, False, 0)
    dlg.show_all()
    try:
        answer = dlg.run()
        key = entry.get_text().strip()
        keep = remember.get_active()
    finally:
        entry.set_text("")
        dlg.destroy()
    if answer != Gtk.ResponseType.OK or not key:
        return None
    return key, keep


class WaitDialog:
    """Phase, queue position, elapsed time and the latest log line, with Cancel; with several
    takes, one row per take (queued with its position, running, done, failed)."""

    def __init__(self, takes: int = 1) -> None:
        _init_ui()
        self.cancelled = False
        self.dlg = GimpUi.Dialog(title="Outpainting", role="flux-outpaint-wait")
        self.dlg.set_default_size(360, -1)
        self.cancel_button = self.dlg.add_button("_Cancel", Gtk.ResponseType.CANCEL)
        self.dlg.connect("response", self._on_response)
        self.dlg.connect("delete-event", self._on_delete)
        box = self.dlg.get_content_area()
        box.set_spacing(6)
        box.set_border_width(12)
        self.phase = Gtk.Label(xalign=0.0, label="Starting…")
        self.queue = Gtk.Label(xalign=0.0, label="")
        self.log = Gtk.Label(xalign=0.0, label="")
        self.log.set_ellipsize(3)  # Pango.EllipsizeMode.END, without importing Pango
        self.log.set_max_width_chars(60)
        self.bar = Gtk.ProgressBar(show_text=True, text="0 s")
        self.rows = [Gtk.Label(xalign=0.0, label="") for _ in range(takes if takes > 1 else 0)]
        lines = self.rows or [self.queue]  # several takes: each row has its own position
        for widget in (self.phase, *lines, self.bar, self.log):
            box.pack_start(widget, False, False, 0)
        self.dlg.show_all()

    def _on_response(self, *_args: object) -> None:
        if not self.cancelled:
            self.cancelled = True
            self.cancel_button.set_sensitive(False)
            self.phase.set_text("Cancelling…")

    def _on_delete(self, *_args: object) -> bool:
        """Closing the window cancels; True: the window stays until the job has ended."""
        self._on_response()
        return True

    def show(self, job: worker.Background[object]) -> None:
        if self.rows:
            self._show_takes(job.takes)
        else:
            self._show_one(job.progress)
        self.bar.set_text(f"{int(time.monotonic() - job.started)} s")
        self.bar.pulse()
        if job.last_log:
            self.log.set_text(job.last_log)
        _pump()

    def _show_one(self, progress: Progress | None) -> None:
        if not self.cancelled:
            self.phase.set_text("Starting…" if progress is None else progress.phase.label + "…")
        position = None if progress is None else progress.queue_position
        self.queue.set_text("" if position is None else f"Queue position: {position + 1}")

    def _show_takes(self, takes: Mapping[int, Progress]) -> None:
        """One row per take: the latest report may be any take's, so each row tells its own."""
        if not self.cancelled:
            self.phase.set_text(f"Outpainting {len(self.rows)} variations…")
        for index, row in enumerate(self.rows):
            row.set_text(f"Variation {index + 1}: {take_status(takes.get(index))}")

    def close(self) -> None:
        self.dlg.destroy()
        _pump()


def wait(job: worker.Background[_T], takes: int = 1) -> _T:
    """Interactive wait: our dialog (which can cancel) plus the status-bar progress."""
    dialog = WaitDialog(takes)
    try:
        worker.drive(job, lambda: dialog.show(job), lambda: dialog.cancelled)
        if dialog.cancelled:
            worker.finish_after_cancel(job, lambda: dialog.show(job))
            raise worker.UserCancelled("Cancelled")
    finally:
        dialog.close()
    return job.outcome()
