"""Several takes of one outpaint (variations): N requests, then one layer group.

The network half is ``flux_outpaint.variations.run_variations`` in the worker thread: every take
ends as a result or an error before the image is touched.  Then each result is decoded and
checked (a take whose image cannot be used joins the failed ones, named by its request) by
the single result's own preparation (colour match, then the grain its enlarged band needs,
seeded from that take's pixels and noted in the journal for recover), and
``placement.apply_group`` adds the group in one undo step.  Some failed: the others are placed
and one message names each failed request.  All failed: the image stays as it was and the
procedure fails with that line.

Each layer keeps its take's own number ("#2 Outpaint" is the second request), first, so the
takes can be told apart in the Layers dock at its default width, and the message about a
failed take and the layers that are there never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from flux_outpaint.errors import OutpaintError
from flux_outpaint.variations_text import layer_name
from gi.repository import Gimp

from .placement import TakePixels, apply_group

if TYPE_CHECKING:  # the network half is imported when a job starts (see gimp_glue)
    import threading

    from flux_outpaint.framing import Placement
    from flux_outpaint.grain import Grain
    from flux_outpaint.journal import Journal
    from flux_outpaint.payload import Encoder
    from flux_outpaint.pipeline import Job, JobResult
    from flux_outpaint.queue_client import FalQueueClient
    from flux_outpaint.variations import Take

    from .session import Deadline
    from .worker import Report


# (the take's JobResult) -> (rgba, width, height, grain), checked, ready to place: the
# single-result path's own preparation (colour matched, grain decided and noted)
Decode = Callable[["JobResult"], "tuple[bytes, int, int, Grain]"]
Work = Callable[["FalQueueClient", "Report", "threading.Event"], "list[Take]"]


def network_work(job: Job, count: int, journal: Journal, encoder: Encoder, extra: Deadline) -> Work:
    """The worker's part: ``run_variations`` with each take's progress on its own row."""
    from flux_outpaint import variations  # the network half: imported once it is ready

    def work(client: FalQueueClient, report: Report, cancel: threading.Event) -> list[Take]:
        return variations.run_variations(
            job,
            count,
            client=client,
            journal=journal,
            encoder=encoder,
            on_progress=lambda index, progress: report(progress, index),
            cancel=cancel,
            **extra,
        )

    return work


def place(
    image: Gimp.Image,
    above: Gimp.Layer | None,
    takes: list[Take],
    where: Placement,
    decode: Decode,
    secrets: tuple[str, ...],
    *,
    edit_mask_of: Gimp.Layer | None = None,
    flush_displays: bool = True,
    placed: list[str] | None = None,
) -> Gimp.GroupLayer:
    """The takes that arrived as one group above ``above``; returns the group.  The request
    ids of the takes in it are appended to ``placed``."""
    from flux_outpaint.variations import Take, failure_line

    takes = list(takes)
    layers: list[TakePixels] = []
    ids: list[str] = []
    for take in takes:
        if take.result is None:
            continue
        try:
            rgba, width, height, grain = decode(take.result)
        except OutpaintError as exc:  # paid for but unusable: named with the failed ones
            takes[take.index] = Take(take.index, error=exc)
            continue
        layers.append((layer_name(take.index), rgba, width, height, grain))
        ids.append(take.result.request_id)
    failed = failure_line(takes, secrets)
    if not layers:
        raise OutpaintError(failed)
    group = apply_group(
        image,
        above,
        layers,
        where,
        edit_mask_of=edit_mask_of,
        flush_displays=flush_displays,
    )
    if placed is not None:
        placed.extend(ids)
    if failed:
        Gimp.message(failed)
    return group
