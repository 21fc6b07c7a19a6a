"""The windows: the settings dialog, the API-key prompt and the wait window.

Only runs that may show windows get here: the settings dialog for an interactive run, the
wait window for an interactive run and for Repeat (last values, Ctrl+F), which spends money
like any other run and must be as visible and as cancellable.  Non-interactive calls (scripts)
never open a window.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import gi

gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
from flux_outpaint.i18n import _, ngettext  # noqa: E402
from flux_outpaint.status import Phase  # noqa: E402
from flux_outpaint.variations_text import cancel_summary, number, row_text  # noqa: E402
from gi.repository import GimpUi, GLib, Gtk  # noqa: E402

from . import worker  # noqa: E402

if TYPE_CHECKING:
    from flux_outpaint.status import Progress
    from gi.repository import Gimp

_T = TypeVar("_T")

PLUG_IN = "flux-outpaint"
SIDES = ("expand-left", "expand-right", "expand-top", "expand-bottom")
# The order people read the form in: where, how, then how many.
ROWS = (
    "sides",
    *SIDES,
    "mode",
    "output-format",
    "seam-blend",
    "color-match",
    "grain-match",
    "safety-checker",
    "variations",
)
# Pixel fields, each followed by its unit.
PIXEL_FIELDS = (*SIDES, "seam-blend")
# 3.2 shows a two-option choice as radio buttons, 3.0 as a combo: force one look.
_COMBOS = ("mode", "output-format")
# The estimate keeps room for this many lines whatever it says, so the buttons never move.
ESTIMATE_LINES = 4
ESTIMATE_CHARS = 64
_ELLIPSIZE_END = 3  # Pango.EllipsizeMode.END, without importing Pango


def title() -> str:
    return _("Outpaint (FLUX.2 pro)")


def _init_ui() -> None:
    GimpUi.init(PLUG_IN)


def _pump() -> None:
    while Gtk.events_pending():
        Gtk.main_iteration_do(False)


def _reserve_lines(label: Gtk.Label, lines: int) -> None:
    """A label that keeps the height of ``lines`` lines, so the window never grows."""
    height = label.create_pango_layout("\n".join("Ay" for _ in range(lines))).get_pixel_size()[1]
    label.set_size_request(-1, height)


def _add_unit(widget: Gtk.Widget, unit: str) -> None:
    """A unit after a labelled field (GimpLabeled is a grid: label, field)."""
    if isinstance(widget, Gtk.Grid):
        tail = Gtk.Label(label=unit, xalign=0.0)
        tail.set_margin_start(4)
        widget.attach(tail, 2, 0, 1, 1)
        tail.show()


def settings(
    procedure: Gimp.Procedure, config: Gimp.ProcedureConfig, estimate: Callable[[], str]
) -> bool:
    """The procedure's own dialog, grouped and with units, plus a live estimate (output
    size, any downscale, the cost) that keeps its place as it changes."""
    _init_ui()
    dlg = GimpUi.ProcedureDialog.new(procedure, config, title())
    for name in _COMBOS:
        dlg.get_widget(name, Gtk.ComboBox.__gtype__)
    for name in PIXEL_FIELDS:
        _add_unit(dlg.get_widget(name, GimpUi.LabelSpin.__gtype__), _("px"))
    # A heading over the sides, not a frame: a frame indents its rows, and the side fields
    # would no longer line up with the others.
    heading = GLib.markup_escape_text(_("Expand by (−1 = automatic)"))
    title_label = dlg.get_label("sides", f"<b>{heading}</b>", True, False)
    if isinstance(title_label, Gtk.Label):
        title_label.set_xalign(0.0)  # a heading over its rows, on their left edge
    for name in ("color-match", "grain-match", "safety-checker"):
        # the same left edge as the labelled rows
        check = dlg.get_widget(name, Gtk.CheckButton.__gtype__)
        check.set_halign(Gtk.Align.START)
        check.set_margin_start(0)
    dlg.fill(list(ROWS))
    line = Gtk.Label(xalign=0.0, yalign=0.0)
    line.set_line_wrap(True)
    line.set_width_chars(ESTIMATE_CHARS)
    line.set_max_width_chars(ESTIMATE_CHARS)
    line.set_selectable(True)
    line.set_margin_top(8)  # apart from the form rows above it
    _reserve_lines(line, ESTIMATE_LINES)
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
    dlg = GimpUi.Dialog(title=_("fal API key"), role="flux-outpaint-key")
    dlg.add_button(_("_Cancel"), Gtk.ResponseType.CANCEL)
    dlg.add_button(_("_OK"), Gtk.ResponseType.OK)
    dlg.set_default_response(Gtk.ResponseType.OK)
    box = dlg.get_content_area()
    box.set_spacing(8)
    box.set_border_width(12)
    intro = Gtk.Label(
        xalign=0.0,
        label=_(
            "Outpainting runs on fal.ai. Paste your fal API key (fal.ai dashboard, Keys). "
            "It is sent only to fal."
        ),
    )
    intro.set_line_wrap(True)
    intro.set_max_width_chars(50)
    entry = Gtk.Entry(visibility=False, activates_default=True)
    entry.set_input_purpose(Gtk.InputPurpose.PASSWORD)
    entry.set_width_chars(40)
    remember = Gtk.CheckButton.new_with_mnemonic(_("_Remember the key on this computer"))
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


def cancel_note(count: int) -> str:
    """What Cancel does, said before it is pressed (fal may bill a request that has started)."""
    if count == 1:
        return _(
            "Cancel takes the request out of fal's queue (not billed) or, once it runs, asks "
            "fal to stop it (fal may still bill it)."
        )
    return _(
        "Cancel removes the requests still waiting in fal's queue (not billed) and asks fal "
        "to stop the ones already running (fal may still bill those)."
    )


class WaitDialog:
    """What is running and what it costs, each take's own state, and what Cancel does.

    One take: its phase and the latest log line.  Several: one row per take (waiting,
    sending, queued, running with that take's log line, done, failed), and fal's queue
    position once, not per row (every take waits in the same queue)."""

    def __init__(self, takes: int = 1, cost: str = "") -> None:
        _init_ui()
        self.count = takes
        self.cancelled = False
        self.at_cancel: list[str] = []  # each take's state when Cancel was pressed
        self.dlg = GimpUi.Dialog(title=_("Outpainting"), role="flux-outpaint-wait")
        self.dlg.set_default_size(420, -1)
        self.cancel_button = self.dlg.add_button(_("_Cancel"), Gtk.ResponseType.CANCEL)
        self.dlg.connect("response", self._on_response)
        self.dlg.connect("delete-event", self._on_delete)
        box = self.dlg.get_content_area()
        box.set_spacing(6)
        box.set_border_width(12)
        self.phase = Gtk.Label(xalign=0.0, label=_("Starting…"))
        self.cost = Gtk.Label(xalign=0.0, label=cost)
        self.cost.set_line_wrap(True)
        self.cost.set_max_width_chars(60)
        self.queue = Gtk.Label(xalign=0.0, label="")
        self.log = Gtk.Label(xalign=0.0, label="")
        self.log.set_ellipsize(_ELLIPSIZE_END)
        self.log.set_max_width_chars(60)
        self.bar = Gtk.ProgressBar(show_text=True, text=_("{seconds} s").format(seconds=0))
        self.grid = Gtk.Grid(column_spacing=12, row_spacing=4)
        self.rows: list[tuple[Gtk.Label, Gtk.Label]] = []
        if takes > 1:
            for index in range(takes):
                name = Gtk.Label(xalign=0.0, label=number(index))
                state = Gtk.Label(xalign=0.0, label="")
                state.set_ellipsize(_ELLIPSIZE_END)
                state.set_max_width_chars(50)
                state.set_hexpand(True)
                self.grid.attach(name, 0, index, 1, 1)
                self.grid.attach(state, 1, index, 1, 1)
                self.rows.append((name, state))
        self.note = Gtk.Label(xalign=0.0, label=cancel_note(takes))
        self.note.set_line_wrap(True)
        self.note.set_max_width_chars(60)
        self.note.get_style_context().add_class("dim-label")
        lines = [self.grid] if self.rows else [self.log]
        for widget in (self.phase, self.cost, self.queue, *lines, self.bar, self.note):
            box.pack_start(widget, False, False, 0)
        self.dlg.show_all()
        self.queue.hide()  # until fal reports a position

    def _on_response(self, *_args: object) -> None:
        if not self.cancelled:
            self.cancelled = True
            self.cancel_button.set_sensitive(False)
            self.phase.set_text(_("Cancelling…"))

    def _on_delete(self, *_args: object) -> bool:
        """Closing the window cancels; True: the window stays until the job has ended."""
        self._on_response()
        return True

    def show(self, job: worker.Background[object]) -> None:
        from flux_outpaint.variations import queue_position  # loaded with the network half

        if self.rows:
            self._show_takes(job)
            position = queue_position(job.takes)
        else:
            self._show_one(job.progress)
            progress = job.progress
            position = None
            if progress is not None and progress.phase is Phase.QUEUED:
                at = progress.queue_position
                position = None if at is None else at + 1
        self.queue.set_visible(position is not None)
        if position is not None:
            self.queue.set_text(_("Position in fal's queue: {position}").format(position=position))
        self.bar.set_text(_("{seconds} s").format(seconds=int(time.monotonic() - job.started)))
        self.bar.pulse()
        if not self.rows and job.last_log:
            self.log.set_text(job.last_log)
        _pump()

    def _show_one(self, progress: Progress | None) -> None:
        if not self.cancelled:
            self.phase.set_text(_("Starting…") if progress is None else progress.phase.label + "…")

    def _show_takes(self, job: worker.Background[object]) -> None:
        """One row per take: the latest report may be any take's, so each row tells its own."""
        if not self.cancelled:
            text = ngettext(
                "Outpainting {count} variation…", "Outpainting {count} variations…", self.count
            )
            self.phase.set_text(text.format(count=self.count))
        takes = job.takes
        for index, (_name, state) in enumerate(self.rows):
            state.set_text(row_text(takes.get(index), job.take_logs.get(index)))

    def remember_states(self, job: worker.Background[object]) -> None:
        """Each take's state at the moment of Cancel: what the line after it reports."""
        from flux_outpaint.variations import take_state

        if job.takes or self.count > 1:
            self.at_cancel = [take_state(job.takes.get(i)) for i in range(self.count)]
        else:
            self.at_cancel = [take_state(job.progress)]

    def close(self) -> None:
        self.dlg.destroy()
        _pump()


def wait(job: worker.Background[_T], takes: int = 1, cost: str = "") -> _T:
    """A run that may show windows: the wait window (which can cancel on fal) plus the
    status-bar progress; after Cancel, one line says what was cancelled and billed."""
    dialog = WaitDialog(takes, cost)
    try:
        worker.drive(job, lambda: dialog.show(job), lambda: dialog.cancelled)
        if dialog.cancelled:
            dialog.remember_states(job)
            worker.finish_after_cancel(job, lambda: dialog.show(job))
            raise worker.UserCancelled(cancel_summary(dialog.at_cancel), tell=True)
    finally:
        dialog.close()
    return job.outcome()
