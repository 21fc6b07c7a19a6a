"""One outpaint job end to end: reference pixels → payload → fal queue → result bytes.

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

from . import payload
from .errors import CancelledError, OutpaintError
from .journal import Journal
from .planning import Plan
from .queue_client import FalQueueClient, RequestHandle, StatusEvent
from .retry import DEFAULT_DEADLINE_S

__all__ = ["Job", "JobResult", "Progress", "run_job"]


@dataclass(frozen=True)
class Job:
    reference_rgba: bytes  # RGBA u8, already at plan.request_reference size
    plan: Plan
    options: payload.RequestOptions
    purpose: dict = field(default_factory=dict)


@dataclass(frozen=True)
class JobResult:
    request_id: str
    data: bytes
    content_type: str
    cached_path: str | None


@dataclass(frozen=True)
class Progress:
    phase: str  # encoding|uploading|submitting|queued|running|downloading|done
    queue_position: int | None = None
    log_line: str | None = None
    elapsed_s: float = 0.0
    request_id: str | None = None


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

    def report(phase: str, position: int | None = None, log: str | None = None) -> None:
        if on_progress is not None:
            on_progress(Progress(phase, position, log, clock() - start, request_id))

    def check_cancel() -> None:
        if cancel is not None and cancel.is_set():
            raise CancelledError("Cancelled", request_id=request_id)

    plan = job.plan
    width, height = plan.request_reference
    report("encoding")
    encoding = payload.choose_encoding(payload.has_alpha(job.reference_rgba), width, height)
    data = encoder(job.reference_rgba, width, height, encoding)
    mime = encoding.mime
    check_cancel()
    if payload.choose_transport(len(data)) == "inline":
        image_url = payload.data_uri(data, mime)
    else:
        report("uploading")
        image_url = client.upload(data, mime, f"reference.{encoding.extension}")
    body = payload.build_request(image_url, plan.request_expansion, job.options)
    check_cancel()

    report("submitting")
    handle: RequestHandle = client.submit(body)
    request_id = handle.request_id
    journal.record_submit(handle, _purpose(job, encoding, len(data)))
    report("queued")

    def on_event(event: StatusEvent) -> None:
        phase = "queued" if event.phase == "queued" else "running"
        lines = list(event.new_logs) or [None]
        for line in lines:
            report(phase, event.queue_position, line)

    try:
        client.wait(handle, on_event=on_event, deadline=deadline, cancel=cancel)
        result_json = client.result(handle)
        journal.mark(request_id, "completed")
        report("downloading")
        blob, content_type = client.download(result_json)
        cached = journal.store_result(request_id, blob, content_type)
        journal.mark(request_id, "downloaded", result_path=str(cached))
    except CancelledError as exc:
        journal.mark(request_id, "cancelled")
        exc.request_id = exc.request_id or request_id
        raise
    except OutpaintError as exc:
        journal.mark(request_id, "failed", error=str(exc))
        exc.request_id = exc.request_id or request_id
        raise
    report("done")
    return JobResult(request_id, blob, content_type, str(cached))


def _purpose(job: Job, encoding: payload.Encoding, payload_bytes: int) -> dict:
    plan = job.plan
    src = plan.source
    return {
        **job.purpose,
        "canvas": [src.canvas_width, src.canvas_height],
        "reference": [src.reference.x, src.reference.y, src.reference.width,
                      src.reference.height],
        "request_output": list(plan.request_output),
        "scale": plan.scale,
        "encoding": encoding.format,
        "payload_bytes": payload_bytes,
        "options": {"mode": job.options.mode, "output_format": job.options.output_format},
        "cost_usd_estimate": plan.cost_usd,
    }
