"""Recover last outpaint result: a paid-for result back into the image.

The journal records every submitted request before the wait starts, and the downloaded
result is cached next to it, so a result survives GIMP being closed, the plug-in being
killed by the status-bar Cancel, or a failed placement.  The result goes where the original
run put it (same place, size and seam mask) when the journal knows that; otherwise at the
canvas origin, unmasked.
"""

from __future__ import annotations

from outpaint import colormatch, imageinfo, pipeline
from outpaint.errors import InputError, ResultError, about_request
from outpaint.framing import Placement
from outpaint.geometry import Expansion, Rect

from . import pixels, session, source, worker
from .placement import apply

LAYER_NAME = "Outpaint (recovered)"
# A finished request is "completed" on fal's side, "downloaded" once its image is cached.
_DONE_STATES = ("downloaded", "completed")


def find_entry(journal, request_id: str | None):
    if request_id:
        entry = journal.find(request_id)
        if entry is None:
            raise InputError(f"No outpaint request {request_id} in the journal")
        return entry
    found = [e for e in (journal.latest(state=s) for s in _DONE_STATES) if e is not None]
    if not found:
        raise InputError("No completed outpaint result to recover")
    return max(found, key=lambda e: e.updated_at or "")


def _fetch(run_mode, request_id: str, journal, secrets: list[str]) -> bytes:
    """From fal, in the worker thread (the main thread keeps pumping)."""
    key = session.api_key(run_mode, secrets)

    deadline = session.deadline_s()
    extra = {} if deadline is None else {"deadline_s": deadline}

    def work(client, report, cancel):
        return pipeline.recover(request_id, client, journal, cancel=cancel, **extra)[0]

    return worker.wait_quietly(session.start(key, session.base_url(), work))


def where_from(entry, width: int, height: int) -> Placement:
    recorded = (entry.purpose or {}).get("placement")
    if recorded:
        try:
            return Placement.from_json(recorded)
        except ValueError:  # a damaged record: place it like an unknown one
            pass
    # Unknown origin: the whole result, unmasked (an empty reference protects nothing).
    return Placement(Rect(0, 0, width, height), Rect(0, 0, 0, 0), Expansion(), 0)


def recover(run_mode, image, drawables, config, secrets: list[str]):
    journal = session.journal()
    wanted = (config.get_property("request-id") or "").strip() or None
    entry = find_entry(journal, wanted)
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
    # As the run placed it: with the colour correction it measured, if it made one.
    rgba = colormatch.Correction.from_json(entry.details.get("color_correction")).apply(rgba)
    above = None
    if drawables and len(drawables) == 1:
        try:
            above, _ = source.pick_layer(drawables)
        except InputError:  # a group or a channel: the new layer goes on top instead
            above = None
    return apply(
        image, above, rgba, width, height, where_from(entry, width, height), name=LAYER_NAME
    )
