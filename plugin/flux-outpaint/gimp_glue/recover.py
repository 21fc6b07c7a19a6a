"""Recover last outpaint result: a paid-for result back into the image.

The journal records every submitted request before the wait starts, and the downloaded
result is cached next to it, so a result survives GIMP being closed, the plug-in being
killed by the status-bar Cancel, or a failed placement.  Which request, the cache (checked)
and the fetch by id are the core's recovery service (``flux_outpaint.recovery``), the same
the CLI uses; this module only decodes and places.  The result goes where the original run
put it (same place, size and seam mask) when the journal knows that; otherwise at the canvas
origin, unmasked.

A request that was one take of several comes back with every take of its run that may have
a result, as a layer group again.  Recover never submits.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from flux_outpaint import colormatch, recovery, settings, variations
from flux_outpaint.errors import InputError, OutpaintError, about_request
from flux_outpaint.framing import Placement
from flux_outpaint.geometry import Expansion, Rect
from flux_outpaint.grain import Grain
from flux_outpaint.i18n import _
from flux_outpaint.journal_records import GimpLayer, State
from flux_outpaint.variations_text import layer_name as take_layer_name
from gi.repository import Gimp

from . import grainfill, pixels, session, source, worker
from .placement import TakePixels, apply, apply_group


def layer_name() -> str:
    """The recovered layer's (or group's) name, in the person's language."""
    return _("Outpaint (recovered)")


if TYPE_CHECKING:
    import threading

    from flux_outpaint.journal import Journal, JournalEntry
    from flux_outpaint.queue_client import FalQueueClient

    from .worker import Report


def _fetch_all(
    run_mode: Gimp.RunMode, entries: list[JournalEntry], journal: Journal, secrets: list[str]
) -> dict[str, bytes | OutpaintError]:
    """Each request's image from the server that took it, or the error that stopped it
    (one worker for all; the main thread keeps pumping)."""
    key = session.api_key(run_mode, secrets)
    deadline = settings.deadline_s()
    extra: session.Deadline = {} if deadline is None else {"deadline_s": deadline}

    def work(
        client: FalQueueClient, report: Report, cancel: threading.Event
    ) -> dict[str, bytes | OutpaintError]:
        got: dict[str, bytes | OutpaintError] = {}
        for entry in entries:
            try:
                got[entry.request_id] = recovery.fetch(
                    entry, client, journal, cancel=cancel, **extra
                )[0]
            except OutpaintError as exc:  # one lost take must not lose the others
                got[entry.request_id] = exc
        return got

    return worker.wait_quietly(session.start(key, session.base_url(), work))


def where_from(entry: JournalEntry, width: int, height: int) -> Placement:
    recorded = entry.purpose.placement if isinstance(entry.purpose, GimpLayer) else None
    if recorded is not None:
        return recorded
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
    try:
        entry = recovery.choose(journal, wanted, GimpLayer.TOOL)
    except recovery.NothingToRecover as exc:
        what = f"No outpaint request {wanted} in the journal" if wanted else None
        raise InputError(what or "No outpaint result to recover") from exc
    members = recovery.members(entry, journal.entries())
    blobs: dict[str, bytes | OutpaintError] = {}
    for member in members:
        hit = recovery.cached(journal, member)  # checked; no key and no network needed
        if hit is not None:
            blobs[member.request_id] = hit[0]
    missing = [m for m in members if m.request_id not in blobs]
    if missing:
        blobs.update(_fetch_all(run_mode, missing, journal, secrets))
    above = _above(drawables)
    if entry.take is None:
        got = blobs[entry.request_id]
        if isinstance(got, OutpaintError):
            raise got
        with about_request(entry.request_id):
            rgba, width, height = pixels.decode(got, entry.expected_output)
        where = where_from(entry, width, height)
        rgba = _as_placed(entry, rgba, width, height, where)
        grain = Grain.from_json(entry.grain)
        layer = apply(image, above, rgba, width, height, where, name=layer_name(), grain=grain)
        _placed(journal, [entry.request_id])
        return layer
    return _recover_run(image, above, journal, entry, members, blobs, secrets)


def _as_placed(
    member: JournalEntry, rgba: bytes, width: int, height: int, where: Placement
) -> bytes:
    """As the run placed it: with the colour correction it measured, if it made one."""
    correction = colormatch.Correction.from_json(member.color_correction)
    return correction.apply(rgba, width, height, grainfill.field_areas(where, width, height))


def _placed(journal: Journal, request_ids: list[str]) -> None:
    for request_id in request_ids:
        with contextlib.suppress(OSError):  # placed all the same; the journal is best effort
            journal.mark(request_id, State.PLACED)


def _above(drawables: list[Gimp.Drawable]) -> Gimp.Layer | None:
    if drawables and len(drawables) == 1:
        try:
            return source.pick_layer(drawables)[0]
        except InputError:  # a group or a channel: the new layer goes on top instead
            return None
    return None


def _recover_run(
    image: Gimp.Image,
    above: Gimp.Layer | None,
    journal: Journal,
    entry: JournalEntry,
    members: list[JournalEntry],
    blobs: dict[str, bytes | OutpaintError],
    secrets: list[str],
) -> Gimp.GroupLayer:
    """Every take of ``entry``'s run that came back, as a group; the ones that cannot come
    back are named in one message (all of them: the procedure fails with that line)."""
    layers: list[TakePixels] = []
    outcomes: list[variations.Take] = []
    placed: list[str] = []
    for member in members:
        rid = member.request_id
        number = member.take.number if member.take is not None else 0
        index = number - 1 if number > 0 else len(outcomes)
        try:
            got = blobs[rid]
            if isinstance(got, OutpaintError):
                raise got
            with about_request(rid):
                rgba, width, height = pixels.decode(got, member.expected_output)
            rgba = _as_placed(member, rgba, width, height, where_from(member, width, height))
        except OutpaintError as exc:
            outcomes.append(variations.Take(index, error=exc))
            continue
        outcomes.append(variations.Take(index))  # back (its pixels are in layers): counted only
        grain = Grain.from_json(member.grain)  # as the run drew it over this take
        layers.append((take_layer_name(index), rgba, width, height, grain))
        placed.append(rid)
    line = variations.failure_line(outcomes, tuple(secrets), what="not recovered")
    if not layers:
        raise OutpaintError(line)
    width, height = layers[0][2:4]
    group = apply_group(image, above, layers, where_from(entry, width, height), name=layer_name())
    _placed(journal, placed)
    if line:
        Gimp.message(line)
    return group
