"""The two procedures' run functions: the order of work and one-line errors.

Order matters.  Everything that can fail without touching the image runs first: reading the
layer, planning, the key, the whole network job (in a worker thread), decoding and checking
the result.  Only then does ``placement.apply`` change the image, in one undo group.  GIMP
may kill the plug-in at any moment while it waits (status-bar Cancel), so an image is never
left half-changed by a wait.
"""

from __future__ import annotations

import os
import sys
import traceback

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, GLib, GObject  # noqa: E402
from outpaint import geometry, payload, planning, settings  # noqa: E402
from outpaint.errors import ConfigError, InputError, OutpaintError, user_message  # noqa: E402

from . import pixels, source, worker  # noqa: E402
from .placement import Placement, apply, check_size  # noqa: E402

OUTPAINT = "plug-in-flux-outpaint"
RECOVER = "plug-in-flux-outpaint-recover"
MAX_EXPAND = 2048
# How long one run may wait for fal, in seconds (the core's default when unset); the CLI has
# --timeout for the same thing.
DEADLINE_ENV = "FLUX_OUTPAINT_DEADLINE_S"


def _interactive(run_mode) -> bool:
    return run_mode == Gimp.RunMode.INTERACTIVE


def _guarded(procedure, body):
    """Run ``body(secrets)``; any failure becomes EXECUTION_ERROR with one non-empty line.

    ``secrets`` is filled with the API key as soon as it is known, so that no message (ours,
    the server's, an unexpected exception's) can carry it.
    """
    secrets: list[str] = []
    try:
        layer = body(secrets)
    except worker.UserCancelled:
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the caller as text
        message = user_message(exc, tuple(secrets))
        if not isinstance(exc, OutpaintError) and sys.stderr is not None:  # a bug: keep a trace
            from outpaint.errors import redact  # noqa: PLC0415

            print(redact(traceback.format_exc(), tuple(secrets)), file=sys.stderr)
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR,
                                           GLib.Error(message))
    values = procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, None)
    values.remove(1)
    values.insert(1, GObject.Value(Gimp.Layer.__gtype__, layer))
    return values


def api_key(run_mode, secrets: list[str]) -> str:
    """The configured key; interactively, ask for one when none is configured."""
    try:
        key = settings.load_api_key()
    except ConfigError:
        if not _interactive(run_mode):
            raise
        from .dialog import ask_api_key  # noqa: PLC0415 - Gtk only where a window may open

        answer = ask_api_key()
        if answer is None:
            raise worker.UserCancelled("Cancelled") from None
        key, remember = answer
        secrets.append(key)
        if remember:
            settings.save_api_key(key)
    secrets.append(key)
    return key


def read_options(config) -> tuple[dict[str, int], payload.RequestOptions, int]:
    """The arguments, checked: GIMP silently replaces out-of-range values by defaults."""
    values = {side: int(config.get_property(f"expand-{side}")) for side in source.SIDES}
    mode = config.get_property("mode")
    fmt = config.get_property("output-format")
    if mode not in payload.MODES:
        raise InputError(f"mode must be one of {', '.join(payload.MODES)}, not {mode!r}")
    if fmt not in payload.OUTPUT_FORMATS:
        raise InputError(f"output-format must be one of {', '.join(payload.OUTPUT_FORMATS)}")
    blend = int(config.get_property("seam-blend"))
    options = payload.RequestOptions(mode=mode, output_format=fmt,
                                     enable_safety_checker=bool(
                                         config.get_property("safety-checker")))
    return values, options, blend


def estimate_line(auto: source.Automatic, canvas: tuple[int, int], config) -> str:
    """The dialog's live line: what would be asked of fal and what it would cost."""
    try:
        values, _, _ = read_options(config)
        framing = source.frame(auto, *canvas, values)
        plan = planning.make_plan(framing.source)
    except Exception as exc:  # noqa: BLE001 - shown to the person, who can fix the numbers
        return user_message(exc)
    src, (ow, oh) = plan.source, plan.request_output
    text = f"Output {src.canvas_width}×{src.canvas_height} ({src.expansion.describe()})"
    if framing.growth is not None:
        text += f"; the canvas grows to {framing.growth.width}×{framing.growth.height}"
    if plan.resampled:
        text += (f"; sent {'downscaled' if plan.downscaled else 'upscaled'} to {ow}×{oh} "
                 f"({plan.scale:.0%}), the original stays full resolution")
    # The cost on its own line: wrapped inside the sentence it read "about" / "$0.030".
    return text + f"\nEstimated cost (fal's price list): about ${plan.cost_usd:.3f}"


def _alpha_reader(layer, rect: geometry.Rect):
    def bounds_of(visible: geometry.Rect) -> geometry.Rect | None:
        if not layer.has_alpha():
            return geometry.Rect(0, 0, visible.width, visible.height)
        rgba = pixels.read_rgba(layer, visible.translate(-rect.x, -rect.y))
        return geometry.alpha_bounds(rgba, visible.width, visible.height)
    return bounds_of


def outpaint(procedure, run_mode, image, drawables, config, secrets: list[str]):
    layer, was_mask = source.pick_layer(drawables)
    rect = source.layer_rect(layer)
    canvas = (image.get_width(), image.get_height())
    auto = source.automatic(*canvas, rect, _alpha_reader(layer, rect))
    if _interactive(run_mode):
        from . import dialog  # noqa: PLC0415

        for side, value in source.prefill(auto, MAX_EXPAND).items():
            config.set_property(f"expand-{side}", value)
        if not dialog.settings(procedure, config, lambda: estimate_line(auto, canvas, config)):
            raise worker.UserCancelled("Cancelled")
    values, options, blend = read_options(config)
    framing = source.frame(auto, *canvas, values)
    plan = planning.make_plan(framing.source)
    where = Placement.from_plan(plan, framing, blend)
    key = api_key(run_mode, secrets)
    base_url = settings.queue_base_url()
    reference = pixels.read_reference(layer, auto.reference, (rect.x, rect.y),
                                      plan.request_reference)
    purpose = {"tool": "gimp", "gimp": Gimp.version(), "image": image.get_name() or "",
               "layer": layer.get_name(), "placement": where.to_json()}
    job = _start_job(reference, plan, options, purpose, base_url, key)
    result = _wait(run_mode, job)
    try:
        rgba, width, height = pixels.decode(result.data)
        check_size((width, height), plan.request_output)
    except OutpaintError as exc:  # paid for: the id lets the person recover it
        exc.request_id = exc.request_id or result.request_id
        raise
    return apply(image, layer, rgba, width, height, where,
                 edit_mask_of=layer if was_mask else None)


def _start_job(reference, plan, options, purpose, base_url, key) -> worker.Background:
    from outpaint.journal import Journal, default_journal_path  # noqa: PLC0415
    from outpaint.pipeline import Job, run_job  # noqa: PLC0415
    from outpaint.queue_client import FalQueueClient  # noqa: PLC0415

    job = Job(reference_rgba=reference, plan=plan, options=options, purpose=purpose)
    extra = {"deadline_s": deadline} if (deadline := deadline_s()) is not None else {}

    def work(report, cancel):
        client = FalQueueClient(base_url, key)
        try:
            return run_job(job, client=client, journal=Journal(default_journal_path()),
                           encoder=pixels.encode, on_progress=report, cancel=cancel, **extra)
        finally:
            client.close()

    return worker.Background(work).start()


def deadline_s() -> float | None:
    raw = os.environ.get(DEADLINE_ENV, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{DEADLINE_ENV} must be a number of seconds, not {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{DEADLINE_ENV} must be positive")
    return value


def _wait(run_mode, job: worker.Background):
    if _interactive(run_mode):
        from . import dialog  # noqa: PLC0415

        return dialog.wait(job)
    return worker.wait_quietly(job)


def run_outpaint(procedure, run_mode, image, drawables, config, data):
    return _guarded(procedure, lambda secrets: outpaint(procedure, run_mode, image, drawables,
                                                        config, secrets))


def run_recover(procedure, run_mode, image, drawables, config, data):
    from . import recover  # noqa: PLC0415

    return _guarded(procedure, lambda secrets: recover.recover(run_mode, image, drawables,
                                                               config, secrets))
