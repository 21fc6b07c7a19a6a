"""One outpaint job end to end: reference pixels → payload → fal queue → result bytes; and
``recover``, which brings back the result of a request that was already paid for.

Shared by the CLI and the GIMP plug-in.  It never touches GIMP or decodes pixels, so the
plug-in runs it in a worker thread while the main thread keeps GIMP's UI alive.

Order matters for money: the journal entry is written right after the submit returns and
before any waiting, and the downloaded result is stored in the journal's cache before it is
handed back — a crash, a kill or a lost connection after that point loses nothing paid for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import payload
from .errors import CancelledError, OutpaintError, ResultUnavailableError, about_request
from .journal import Journal
from .planning import Plan
from .queue_client import FalQueueClient
from .retry import DEFAULT_DEADLINE_S
from .status import Completed, Phase, Progress, Queued, Status

__all__ = ["Job", "JobResult", "ProgressCallback", "recover", "run_job"]


@dataclass(frozen=True)
class Job:
    reference_rgba: bytes  # RGBA u8, already at plan.request_reference size
    plan: Plan
    options: payload.RequestOptions
    purpose: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobResult:
    request_id: str
    data: bytes
    content_type: str


ProgressCallback = Callable[[Progress], None]


def run_job(
    job: Job,
    *,
    client: FalQueueClient,
    journal: Journal,
    encoder: payload.Encoder,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    deadline_s: float = DEFAULT_DEADLINE_S,
    clock: Callable[[], float] = time.monotonic,
) -> JobResult:
    start = clock()
    deadline = start + deadline_s
    request_id: str | None = None

    def report(phase: Phase, position: int | None = None, log: str | None = None) -> None:
        if on_progress is not None:
            on_progress(Progress(phase, position, log, clock() - start, request_id))

    def check_cancel() -> None:
        if cancel is not None and cancel.is_set():
            raise CancelledError("Cancelled")

    plan = job.plan
    width, height = plan.request_reference
    report(Phase.ENCODING)
    encoding = payload.choose_encoding(payload.has_alpha(job.reference_rgba), width, height)
    data = encoder(job.reference_rgba, width, height, encoding)
    check_cancel()
    if payload.choose_transport(len(data)) == "inline":
        image_url = payload.data_uri(data, encoding.mime)
    else:
        report(Phase.UPLOADING)
        image_url = client.upload(data, encoding.mime, f"reference.{encoding.extension}")
    body = payload.build_request(image_url, plan.request_expansion, job.options)
    check_cancel()

    report(Phase.SUBMITTING)
    handle = client.submit(body)
    request_id = handle.request_id
    journal.record_submit(handle, _purpose(job, encoding, len(data)))
    report(Phase.QUEUED)

    def on_status(status: Status) -> None:
        if isinstance(status, Queued):
            report(Phase.QUEUED, status.position)
            return
        for line in status.logs or (None,):
            report(Phase.RUNNING, None, line)

    with about_request(request_id):
        try:
            client.wait(handle, on_event=on_status, deadline=deadline, cancel=cancel)
            result_json = client.result(handle)
            journal.mark(request_id, "completed")
            report(Phase.DOWNLOADING)
            blob, content_type = client.download(result_json)
            cached = journal.store_result(request_id, blob, content_type)
            journal.mark(request_id, "downloaded", result_path=str(cached))
        except CancelledError:
            journal.mark(request_id, "cancelled")
            raise
        except OutpaintError as exc:
            journal.mark(request_id, "failed", error=str(exc))
            raise
    report(Phase.DONE)
    return JobResult(request_id, blob, content_type)


def recover(request_id: str, client: FalQueueClient, journal: Journal) -> tuple[bytes, str]:
    """The image of a paid request: from the cache, else fetched by id.  Never submits.

    Asks fal for the request's status first, so a request that is still queued or running
    gives a clear message instead of a confusing result error.  A fetched result is stored in
    the cache and marked ``downloaded``.
    """
    cached = journal.cached_result(request_id)
    if cached is not None:
        return cached
    entry = journal.find(request_id)
    handle = (
        entry.handle
        if entry is not None and entry.handle is not None
        else (client.handle_for(request_id))
    )
    with about_request(request_id):
        status = client.status(handle)
        if not isinstance(status, Completed):
            state = "queued" if isinstance(status, Queued) else "running"
            raise ResultUnavailableError(
                f"Request {request_id} is still {state} on fal; try again once it has finished"
            )
        result_json = client.result(handle)
        blob, content_type = client.download(result_json)
        path = journal.store_result(request_id, blob, content_type)
        journal.mark(request_id, "downloaded", result_path=str(path), recovered=True)
    return blob, content_type


def _purpose(job: Job, encoding: payload.Encoding, payload_bytes: int) -> dict[str, Any]:
    plan = job.plan
    src = plan.source
    return {
        **job.purpose,
        "canvas": [src.canvas_width, src.canvas_height],
        "reference": [src.reference.x, src.reference.y, src.reference.width, src.reference.height],
        "request_output": list(plan.request_output),
        "scale": plan.scale,
        "encoding": encoding.format,
        "payload_bytes": payload_bytes,
        "options": {"mode": job.options.mode, "output_format": job.options.output_format},
        "cost_usd_estimate": plan.cost_usd,
    }
