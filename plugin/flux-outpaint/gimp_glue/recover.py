"""Recover last outpaint result: a paid-for result back into the image.

The journal records every submitted request before the wait starts, and the downloaded
result is cached next to it, so a result survives GIMP being closed, the plug-in being
killed by the status-bar Cancel, or a failed placement.  The result goes where the original
run put it (same place, size and seam mask) when the journal knows that; otherwise at the
canvas origin, unmasked.
"""

from __future__ import annotations

from outpaint.errors import InputError
from outpaint.geometry import Expansion, Rect

from . import pixels, procedure, source, worker
from .placement import Placement, apply

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
    from outpaint import journal as journal_module  # noqa: PLC0415
    from outpaint import settings  # noqa: PLC0415
    from outpaint.queue_client import FalQueueClient  # noqa: PLC0415

    key = procedure.api_key(run_mode, secrets)
    base_url = settings.queue_base_url()

    def work(report, cancel):
        client = FalQueueClient(base_url, key)
        try:
            return journal_module.recover(request_id, client, journal)[0]
        finally:
            client.close()

    return worker.wait_quietly(worker.Background(work).start())


def where_from(entry, width: int, height: int) -> Placement:
    recorded = (entry.purpose or {}).get("placement")
    if recorded:
        return Placement.from_json(recorded)
    # Unknown origin: the whole result, unmasked (an empty reference protects nothing).
    return Placement(Rect(0, 0, width, height), Rect(0, 0, 0, 0), Expansion(), 0)


def recover(run_mode, image, drawables, config, secrets: list[str]):
    from outpaint.journal import Journal, default_journal_path  # noqa: PLC0415

    journal = Journal(default_journal_path())
    wanted = (config.get_property("request-id") or "").strip() or None
    entry = find_entry(journal, wanted)
    request_id = entry.request_id
    cached = journal.cached_result(request_id)  # no key and no network needed
    data = cached[0] if cached is not None else None
    if data is None:
        data = _fetch(run_mode, request_id, journal, secrets)
    rgba, width, height = pixels.decode(data)
    above = None
    if drawables and len(drawables) == 1:
        try:
            above, _ = source.pick_layer(drawables)
        except InputError:  # a group or a channel: the new layer goes on top instead
            above = None
    return apply(image, above, rgba, width, height, where_from(entry, width, height),
                 name=LAYER_NAME)
