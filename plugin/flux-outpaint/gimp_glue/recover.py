"""Recover last outpaint result: a paid-for result back into the image.

The journal records every submitted request before the wait starts, and the downloaded
result is cached next to it, so a result survives GIMP being closed, the plug-in being
killed by the status-bar Cancel, or a failed placement.  The result goes where the original
run put it (same place, size and seam mask) when the journal knows that; otherwise at the
canvas origin, unmasked.

A request that was one take of several (variations: the journal gives them one ``run``) comes
back with every finished take of that run, as a layer group again.  Recover never submits:
each result comes from the cache or is fetched from fal by its id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flux_outpaint import colormatch, imageinfo, pipeline, settings, variations
from flux_outpaint.errors import InputError, OutpaintError, ResultError, about_request
from flux_outpaint.framing import Placement
from flux_outpaint.geometry import Expansion, Rect
from flux_outpaint.grain import Grain
from flux_outpaint.i18n import _
from flux_outpaint.variations_text import layer_name as take_layer_name
from gi.repository import Gimp

from . import grainfill, pixels, session, source, worker
from .placement import apply, apply_group


def layer_name() -> str:
    """The recovered layer's (or group's) name, in the person's language."""
    return _("Outpaint (recovered)")


if TYPE_CHECKING:
    import threading

    from flux_outpaint.journal import Journal, JournalEntry
    from flux_outpaint.queue_client import FalQueueClient

    from .worker import Report

# A finished request is "completed" on fal's side, "downloaded" once its image is cached.
_DONE_STATES = ("downloaded", "completed")


def find_entry(journal: Journal, request_id: str | None) -> JournalEntry:
    if request_id:
        entry = journal.find(request_id)
        if entry is None:
            raise InputError(
                _("No outpaint request {request_id} in the journal").format(request_id=request_id)
            )
        return entry
    found = [e for e in (journal.latest(state=s) for s in _DONE_STATES) if e is not None]
    if not found:
        raise InputError(_("No completed outpaint result to recover"))
    return max(found, key=lambda e: e.updated_at or "")


def _fetch(run_mode: Gimp.RunMode, request_id: str, journal: Journal, secrets: list[str]) -> bytes:
    """From fal, in the worker thread (the main thread keeps pumping)."""
    got = _fetch_all(run_mode, [request_id], journal, secrets)[request_id]
    if isinstance(got, OutpaintError):
        raise got
    return got


def _fetch_all(
    run_mode: Gimp.RunMode, request_ids: list[str], journal: Journal, secrets: list[str]
) -> dict[str, bytes | OutpaintError]:
    """Each request's image from fal, or the error that stopped it (one worker for all)."""
    key = session.api_key(run_mode, secrets)

    deadline = settings.deadline_s()
    extra: session.Deadline = {} if deadline is None else {"deadline_s": deadline}

    def work(
        client: FalQueueClient, report: Report, cancel: threading.Event
    ) -> dict[str, bytes | OutpaintError]:
        got: dict[str, bytes | OutpaintError] = {}
        for request_id in request_ids:
            try:
                got[request_id] = pipeline.recover(
                    request_id, client, journal, cancel=cancel, **extra
                )[0]
            except OutpaintError as exc:  # one lost take must not lose the others
                got[request_id] = exc
        return got

    return worker.wait_quietly(session.start(key, session.base_url(), work))


def where_from(entry: JournalEntry, width: int, height: int) -> Placement:
    recorded = (entry.purpose or {}).get("placement")
    if recorded:
        try:
            return Placement.from_json(recorded)
        except ValueError:  # a damaged record: place it like an unknown one
            pass
    # Unknown origin: the whole result, unmasked (an empty reference protects nothing).
    return Placement(Rect(0, 0, width, height), Rect(0, 0, 0, 0), Expansion(), 0)


def recover(
    run_mode: Gimp.RunMode,
    image: Gimp.Image,
    drawables: list[Gimp.Drawable],
    config: Gimp.ProcedureConfig,
    secrets: list[str],
) -> Gimp.Layer:
    journal = session.journal()
    wanted = (config.get_property("request-id") or "").strip() or None
    entry = find_entry(journal, wanted)
    above = _above(drawables)
    if _one_of_several(entry):
        return _recover_run(run_mode, image, above, journal, entry, secrets)
    request_id = entry.request_id
    cached = journal.cached_result(request_id)  # no key and no network needed
    data = cached[0] if cached is not None else None
    if data is None:
        data = _fetch(run_mode, request_id, journal, secrets)
    want = pipeline.expected_output(entry)
    with about_request(request_id):
        if cached is not None:
            try:
                imageinfo.check_result(data, None)  # whole (the size: decode checks it)
            except ResultError:  # damaged in the cache: fetch it again (and check that)
                data = _fetch(run_mode, request_id, journal, secrets)
        rgba, width, height = pixels.decode(data, want)
    where = where_from(entry, width, height)
    rgba = _as_placed(entry, rgba, width, height, where)
    grain = Grain.from_json(entry.details.get("grain"))
    return apply(image, above, rgba, width, height, where, name=layer_name(), grain=grain)


def _as_placed(
    member: JournalEntry, rgba: bytes, width: int, height: int, where: Placement
) -> bytes:
    """As the run placed it: with the colour correction it measured, if it made one."""
    recorded = member.details.get("color_correction")
    correction = colormatch.Correction.from_json(recorded)
    return correction.apply(rgba, width, height, grainfill.field_areas(where, width, height))


def _above(drawables: list[Gimp.Drawable]) -> Gimp.Layer | None:
    if drawables and len(drawables) == 1:
        try:
            return source.pick_layer(drawables)[0]
        except InputError:  # a group or a channel: the new layer goes on top instead
            return None
    return None


def _one_of_several(entry: JournalEntry) -> bool:
    count = (entry.purpose or {}).get("variations")
    return isinstance(count, int) and count > 1


def _recover_run(
    run_mode: Gimp.RunMode,
    image: Gimp.Image,
    above: Gimp.Layer | None,
    journal: Journal,
    entry: JournalEntry,
    secrets: list[str],
) -> Gimp.GroupLayer:
    """Every finished take of ``entry``'s run, as a group; the ones that cannot come back
    are named in one message (all of them: the procedure fails with that line)."""
    members = variations.run_of(entry, journal.entries(), _DONE_STATES)
    blobs: dict[str, bytes | OutpaintError] = {}
    for member in members:
        cached = journal.cached_result(member.request_id)
        if cached is None:
            continue
        try:
            imageinfo.check_result(cached[0], None)
        except ResultError:  # damaged in the cache: fetched again below
            continue
        blobs[member.request_id] = cached[0]
    missing = [m.request_id for m in members if m.request_id not in blobs]
    if missing:
        blobs.update(_fetch_all(run_mode, missing, journal, secrets))
    layers: list[tuple[str, bytes, int, int]] = []
    outcomes: list[variations.Take] = []
    for member in members:
        rid = member.request_id
        number = member.purpose.get("variation")
        index = number - 1 if isinstance(number, int) and number > 0 else len(outcomes)
        try:
            got = blobs[rid]
            if isinstance(got, OutpaintError):
                raise got
            with about_request(rid):
                rgba, width, height = pixels.decode(got, pipeline.expected_output(member))
            rgba = _as_placed(member, rgba, width, height, where_from(member, width, height))
        except OutpaintError as exc:
            outcomes.append(variations.Take(index, error=exc))
            continue
        outcomes.append(variations.Take(index))  # back (its pixels are in layers): counted only
        layers.append((take_layer_name(index), rgba, width, height))
    line = variations.failure_line(outcomes, tuple(secrets), what="not recovered")
    if not layers:
        raise OutpaintError(line)
    width, height = layers[0][2:]
    group = apply_group(image, above, layers, where_from(entry, width, height), name=layer_name())
    if line:
        Gimp.message(line)
    return group
