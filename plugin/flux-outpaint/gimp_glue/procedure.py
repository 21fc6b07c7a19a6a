"""The two procedures' run functions: the order of work and one-line errors.

Order matters.  Everything that can fail without touching the image runs first: reading the
layer, planning, the key, the whole network job (in a worker thread), decoding and checking
the result.  Only then does ``placement.apply`` change the image, in one undo group.  GIMP
may kill the plug-in at any moment while it waits (status-bar Cancel), so an image is never
left half-changed by a wait.
"""

from __future__ import annotations

import contextlib
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from flux_outpaint import colormatch, framing, payload, planning, settings
from flux_outpaint.errors import (
    InputError,
    OutpaintError,
    about_request,
    redact,
    strip_controls,
    user_message,
)
from flux_outpaint.framing import Placement, check_size
from flux_outpaint.grain import NONE, Grain
from flux_outpaint.i18n import _
from flux_outpaint.journal_records import GimpLayer, State
from flux_outpaint.planning import MAX_VARIATIONS
from gi.repository import Gimp, GLib, GObject

from . import grainfill, network, pixels, session, source, transport, variations, worker
from .placement import apply

if TYPE_CHECKING:  # the network half is imported when a job starts (see gimp_glue)
    import threading

    from flux_outpaint.pipeline import JobResult
    from flux_outpaint.queue_client import FalQueueClient

_T = TypeVar("_T")

OUTPAINT = "plug-in-flux-outpaint"
RECOVER = "plug-in-flux-outpaint-recover"


def _guarded(procedure: Gimp.Procedure, body: Callable[[list[str]], Gimp.Layer]) -> Gimp.ValueArray:
    """Run ``body(secrets)``; any failure becomes EXECUTION_ERROR with one non-empty line.

    ``secrets`` is filled with the API key as soon as it is known, so that no message (ours,
    the server's, an unexpected exception's) can carry it.
    """
    secrets: list[str] = []
    try:
        layer = body(secrets)
    except worker.UserCancelled as exc:
        if exc.tell:  # what the cancel stopped and whether anything was billed
            Gimp.message(user_message(exc, tuple(secrets)))
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the caller as text
        message = user_message(exc, tuple(secrets))
        if not isinstance(exc, OutpaintError) and sys.stderr is not None:  # a bug: keep a trace
            trace = strip_controls(traceback.format_exc())  # may quote server text
            print(redact(trace, tuple(secrets)), file=sys.stderr)
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))
    values = procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, None)
    values.remove(1)
    values.insert(1, GObject.Value(Gimp.Layer.__gtype__, layer))
    return values


def read_options(
    config: Gimp.ProcedureConfig,
) -> tuple[dict[str, int], payload.RequestOptions, int]:
    """The arguments, checked: GIMP silently replaces out-of-range values by defaults."""
    values = {side: int(config.get_property(f"expand-{side}")) for side in framing.SIDES}
    mode = config.get_property("mode")
    fmt = config.get_property("output-format")
    if mode not in payload.MODES:
        raise InputError(
            _("mode must be one of {choices}, not {value}").format(
                choices=", ".join(payload.MODES), value=repr(mode)
            )
        )
    if fmt not in payload.OUTPUT_FORMATS:
        raise InputError(
            _("output-format must be one of {choices}").format(
                choices=", ".join(payload.OUTPUT_FORMATS)
            )
        )
    blend = int(config.get_property("seam-blend"))
    options = payload.RequestOptions(
        mode=mode,
        output_format=fmt,
        enable_safety_checker=bool(config.get_property("safety-checker")),
    )
    return values, options, blend


def read_variations(config: Gimp.ProcedureConfig) -> int:
    """How many takes, checked like ``read_options``' values."""
    count = int(config.get_property("variations"))
    if not 1 <= count <= MAX_VARIATIONS:
        raise InputError(
            _("variations must be 1 to {most}, not {count}").format(
                most=MAX_VARIATIONS, count=count
            )
        )
    return count


def estimate_line(
    auto: framing.Automatic, canvas: tuple[int, int], config: Gimp.ProcedureConfig
) -> str:
    """The dialog's live line: what would be asked of fal and what it would cost."""
    try:
        values, _, _ = read_options(config)
        count = read_variations(config)
        framed = framing.frame(auto, *canvas, values)
        plan = planning.make_plan(framed.source)
    except Exception as exc:  # noqa: BLE001 - shown to the person, who can fix the numbers
        return user_message(exc)
    growth = framed.growth
    grows_to = None if growth is None else (growth.width, growth.height)
    # The cost on its own line: wrapped inside the sentence it read "about" / "$0.030".
    return "\n".join(plan.describe(grows_to, variations=count))


def _interactive(run_mode: Gimp.RunMode) -> bool:
    return bool(run_mode == Gimp.RunMode.INTERACTIVE)


def outpaint(
    procedure: Gimp.Procedure,
    run_mode: Gimp.RunMode,
    image: Gimp.Image,
    drawables: list[Gimp.Drawable],
    config: Gimp.ProcedureConfig,
    secrets: list[str],
) -> Gimp.Layer:
    layer, was_mask = source.pick_layer(drawables)
    rect = source.layer_rect(layer)
    canvas = (image.get_width(), image.get_height())
    auto = framing.automatic(*canvas, rect, source.alpha_reader(layer, rect))
    if _interactive(run_mode):
        network()  # no imports in two threads at once
        from . import dialog  # Gtk only where a window may open

        for side, value in framing.prefill(auto, planning.MAX_EXPAND).items():
            config.set_property(f"expand-{side}", value)
        if not dialog.settings(procedure, config, lambda: estimate_line(auto, canvas, config)):
            raise worker.UserCancelled(_("Cancelled"))
    values, options, blend = read_options(config)
    count = read_variations(config)
    match = bool(config.get_property("color-match"))
    grain_match = bool(config.get_property("grain-match"))
    framed = framing.frame(auto, *canvas, values)
    plan = planning.make_plan(framed.source)
    where = Placement.from_plan(plan, blend, framed.origin, framed.growth)
    key = session.api_key(run_mode, secrets)
    url = session.base_url()
    deadline = settings.deadline_s()
    reference = pixels.read_reference(
        layer, auto.reference, (rect.x, rect.y), plan.request_reference
    )
    network()  # the background imports are done: the network half may be imported
    from flux_outpaint import pipeline

    purpose = GimpLayer(Gimp.version(), image.get_name() or "", layer.get_name(), where)
    job = pipeline.Job(reference_rgba=reference, plan=plan, options=options, purpose=purpose)
    extra: session.Deadline = {} if deadline is None else {"deadline_s": deadline}
    edit_mask_of = layer if was_mask else None
    flush = run_mode != Gimp.RunMode.NONINTERACTIVE  # a script flushes itself
    cost = planning.cost_line(plan.cost_usd, count)

    def ready(result: JobResult) -> tuple[bytes, int, int, Grain]:
        """The result, or each take, as it is placed: decoded, colour-matched, and the grain
        its enlarged band needs (seeded from its own pixels and the placement), noted in the
        journal so that recover draws the same grain."""
        rgba, width, height = _decoded(result, plan, reference, match, where)
        if not grain_match:
            return rgba, width, height, NONE
        rid = result.request_id
        with about_request(rid):
            grain = grainfill.decide(
                layer, rect, auto.reference, where, plan, rgba, (width, height)
            )
        if not grain.is_none:
            with contextlib.suppress(OSError):  # best effort: it is drawn all the same
                session.journal().note_grain(rid, grain.to_json())
        return rgba, width, height, grain

    if count > 1:
        takes = variations.network_work(job, count, session.journal(), pixels.encode, extra)
        done = _wait(run_mode, session.start(key, url, takes, transport(), count), count, cost)
        placed: list[str] = []
        group = variations.place(
            image,
            layer,
            done,
            where,
            ready,
            tuple(secrets),
            edit_mask_of=edit_mask_of,
            flush_displays=flush,
            placed=placed,
        )
        _mark_placed(placed)
        return group

    def work(client: FalQueueClient, report: worker.Report, cancel: threading.Event) -> JobResult:
        return pipeline.run_job(
            job,
            client=client,
            journal=session.journal(),
            encoder=pixels.encode,
            on_progress=report,
            cancel=cancel,
            **extra,
        )

    result = _wait(run_mode, session.start(key, url, work, transport()), 1, cost)
    rgba, width, height, grain = ready(result)
    placed_layer = apply(
        image,
        layer,
        rgba,
        width,
        height,
        where,
        edit_mask_of=edit_mask_of,
        flush_displays=flush,
        grain=grain,
    )
    _mark_placed([result.request_id])
    return placed_layer


def _mark_placed(request_ids: list[str]) -> None:
    """In the journal: these results are in the image (best effort: they are placed)."""
    journal = session.journal()
    for request_id in request_ids:
        with contextlib.suppress(OSError):
            journal.mark(request_id, State.PLACED)


def _decoded(
    result: JobResult, plan: planning.Plan, reference: bytes, match: bool, where: Placement
) -> tuple[bytes, int, int]:
    """A take's pixels, checked against the plan before anything is placed, with the colour
    drift taken out when ``match``."""
    with about_request(result.request_id):  # paid for: the id lets the person recover it
        rgba, width, height = pixels.decode(result.data, plan.request_output)
        check_size((width, height), plan.request_output)  # what the decoder made of it
        if match:
            rgba = color_matched(result.request_id, rgba, (width, height), reference, plan, where)
    return rgba, width, height


def color_matched(
    request_id: str,
    rgba: bytes,
    size: tuple[int, int],
    reference: bytes,
    plan: planning.Plan,
    where: Placement,
) -> bytes:
    """The result with the model's colour drift taken out (see ``flux_outpaint.colormatch``),
    the part that varies across the picture where the result will show.

    The correction goes into the journal: recover places the result as this run did, without
    the reference it was measured against."""
    correction = colormatch.for_plan(rgba, size, reference, plan)
    if correction.is_identity:
        return rgba
    session.journal().note_correction(request_id, correction.to_json())
    return correction.apply(rgba, *size, grainfill.field_areas(where, *size))


def _wait(run_mode: Gimp.RunMode, job: worker.Background[_T], count: int = 1, cost: str = "") -> _T:
    """Interactive runs and Repeat (Ctrl+F: last values, no settings dialog) spend money:
    both get the wait window with its cost and a Cancel that cancels on fal.  Scripts wait
    with the status bar only."""
    if session.windows_allowed(run_mode):
        from . import dialog  # Gtk only where a window may open

        return dialog.wait(job, count, cost)
    return worker.wait_quietly(job)


def run_outpaint(
    procedure: Gimp.Procedure,
    run_mode: Gimp.RunMode,
    image: Gimp.Image,
    drawables: list[Gimp.Drawable],
    config: Gimp.ProcedureConfig,
    data: object,
) -> Gimp.ValueArray:
    return _guarded(
        procedure, lambda secrets: outpaint(procedure, run_mode, image, drawables, config, secrets)
    )


def run_recover(
    procedure: Gimp.Procedure,
    run_mode: Gimp.RunMode,
    image: Gimp.Image,
    drawables: list[Gimp.Drawable],
    config: Gimp.ProcedureConfig,
    data: object,
) -> Gimp.ValueArray:
    network()  # no imports in two threads at once
    from . import recover  # only the recover procedure needs it

    return _guarded(
        procedure, lambda secrets: recover.recover(run_mode, image, drawables, config, secrets)
    )
