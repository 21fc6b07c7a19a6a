"""One outpaint job end to end: reference pixels → payload → fal queue → result bytes
(``recovery`` brings back the result of a request that was already paid for).

Shared by the CLI and the GIMP plug-in.  It never touches GIMP or decodes pixels, so the
plug-in runs it in a worker thread while the main thread keeps GIMP's UI alive.

Order matters for money:

* the journal is proven writable, with room for the result, before anything is sent
  (``Journal.ensure_writable``): a request is never paid for while its id could not be kept;
* its entry is written right after the submit returns and before any waiting; if that write
  fails, the request is cancelled on fal at once and the error names it;
* the result is checked (``imageinfo.check_result``: whole, and of a size an outpaint result
  can have) and its text notes stripped (``imageinfo.strip_text``) before it is cached and
  handed back, so broken or hostile bytes are never kept
  as a result.  Whether it fits the plan is the placing caller's question, asked of the
  header before it decodes (``imageinfo.check_header``): a whole image of the wrong size is
  still a paid result, kept so that it can be recovered as it came back.

Every failure after the submit is an OutpaintError that names the request (unexpected ones
too), and the journal says how the request ended.  Later journal notes and the result cache
are best effort: once the id is written down the request can always be recovered from fal,
and a full disk must not cost the person a result that is already in memory.

Cancelling: ``cancel`` (a threading.Event) stops the job wherever it is — a blocked network
read included (``netbudget``) — and a request already submitted is cancelled on fal and
marked ``cancelled`` in the journal.  ``InFlight`` lets a caller that runs several jobs learn
which requests are submitted and not finished at any moment (e.g. to print their ids on
Ctrl-C).  ``deadline_s`` bounds the whole job; every call inside it is bounded by it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from . import imageinfo, payload
from .errors import (
    CancelledError,
    FinishedLateError,
    OutpaintError,
    OutpaintTimeoutError,
    ResultError,
    StorageError,
    about_request,
)
from .i18n import _
from .journal import Journal
from .journal_records import PlanRecord, Purpose, State, UnknownPurpose
from .planning import Plan
from .queue_client import FalQueueClient
from .retry import CANCEL_BUDGET_S, DEFAULT_DEADLINE_S
from .status import Phase, Progress, Queued, RequestHandle, Status

__all__ = [
    "InFlight",
    "Job",
    "JobResult",
    "ProgressCallback",
    "room_for",
    "run_job",
]


@dataclass(frozen=True)
class Job:
    reference_rgba: bytes  # RGBA u8, already at plan.request_reference size
    plan: Plan
    options: payload.RequestOptions
    purpose: Purpose = UnknownPurpose()


@dataclass(frozen=True)
class JobResult:
    request_id: str
    data: bytes
    content_type: str


ProgressCallback = Callable[[Progress], None]


class InFlight:
    """The requests submitted and not yet finished, across the jobs that share it.

    ``run_job(..., in_flight=…)`` adds a request the moment its submit returns and removes it
    when the job ends, however it ends.  Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handles: dict[str, RequestHandle] = {}

    def add(self, handle: RequestHandle) -> None:
        with self._lock:
            self._handles[handle.request_id] = handle

    def discard(self, request_id: str) -> None:
        with self._lock:
            self._handles.pop(request_id, None)

    def handles(self) -> list[RequestHandle]:
        with self._lock:
            return list(self._handles.values())

    def ids(self) -> list[str]:
        return [h.request_id for h in self.handles()]

    def __len__(self) -> int:
        with self._lock:
            return len(self._handles)


def room_for(plan: Plan) -> int:
    """Disk space a result of this plan can need: an uncompressed RGBA PNG, a bit more."""
    width, height = plan.request_output
    return (width * 4 + 1) * height + 64 * 1024


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
    in_flight: InFlight | None = None,
) -> JobResult:
    """Run one job; ``clock`` must be the client's clock (both time.monotonic by default)."""
    start = clock()
    deadline = start + deadline_s
    request_id: str | None = None
    journal = journal.with_secrets(client.secrets)

    def report(phase: Phase, position: int | None = None, log: str | None = None) -> None:
        if on_progress is not None:
            on_progress(Progress(phase, position, log, clock() - start, request_id))

    def check_cancel() -> None:
        if cancel is not None and cancel.is_set():
            raise CancelledError(_("Cancelled"))

    check_cancel()
    plan = job.plan
    try:
        journal.ensure_writable(room_for(plan))
    except StorageError as exc:
        raise StorageError(_("{problem}; nothing was sent to fal").format(problem=exc)) from None
    width, height = plan.request_reference
    report(Phase.ENCODING)
    encoding = payload.choose_encoding(payload.has_alpha(job.reference_rgba), width, height)
    data = encoder(job.reference_rgba, width, height, encoding)
    check_cancel()
    if payload.choose_transport(len(data)) == "inline":
        image_url = payload.data_uri(data, encoding.mime)
    else:
        report(Phase.UPLOADING)
        image_url = client.upload(
            data,
            encoding.mime,
            f"reference.{encoding.extension}",
            deadline=deadline,
            cancel=cancel,
        )
    body = payload.build_request(image_url, plan.request_expansion, job.options)
    check_cancel()

    report(Phase.SUBMITTING)
    handle = client.submit(body, deadline=deadline, cancel=cancel)
    request_id = handle.request_id
    if in_flight is not None:
        in_flight.add(handle)
    try:
        _record_or_cancel(
            client, journal, handle, job.purpose, _plan_record(job, encoding, len(data))
        )
        report(Phase.QUEUED)

        def on_status(status: Status) -> None:
            if isinstance(status, Queued):
                report(Phase.QUEUED, status.position)
                return
            for line in status.logs or (None,):
                report(Phase.RUNNING, None, line)

        with about_request(request_id):
            blob, content_type = _finish(
                client, journal, handle, plan, on_status, report, deadline, cancel
            )
    finally:
        if in_flight is not None:
            in_flight.discard(request_id)
    report(Phase.DONE)
    return JobResult(request_id, blob, content_type)


def _record_or_cancel(
    client: FalQueueClient,
    journal: Journal,
    handle: RequestHandle,
    purpose: Purpose,
    plan: PlanRecord,
) -> None:
    """Write the request down; if that fails, cancel it on fal so nothing unkept is billed.

    The error names the request but offers no recovery: it is not in the journal."""
    try:
        journal.record_submit(handle, purpose, plan)
    except OSError as exc:
        outcome = client.cancel_quietly(handle, CANCEL_BUDGET_S)
        what = {
            "CANCELLATION_REQUESTED": _("it was cancelled on fal"),
            "OK": _("it was cancelled on fal"),
            "ALREADY_COMPLETED": _("it had already finished on fal, but it is not in the journal"),
            "NOT_FOUND": _("fal no longer knows it"),
        }.get(outcome) or _("fal did not confirm the cancel")
        reason = exc.strerror or type(exc).__name__
        raise StorageError(
            _("The journal could not be written after the submit ({reason}); {what}").format(
                reason=reason, what=what
            ),
            request_id=handle.request_id,
        ) from None


def _finish(
    client: FalQueueClient,
    journal: Journal,
    handle: RequestHandle,
    plan: Plan,
    on_status: Callable[[Status], None],
    report: Callable[[Phase], None],
    deadline: float,
    cancel: threading.Event | None,
) -> tuple[bytes, str]:
    """Wait, fetch, check and cache the result of a submitted request (journaled already)."""
    request_id = handle.request_id
    finished = False  # COMPLETED on fal: from here a cancel only stops our side
    try:
        client.wait(handle, on_event=on_status, deadline=deadline, cancel=cancel)
        finished = True
        _note(journal, request_id, State.COMPLETED)  # its result exists from here on
        result_json = client.result(handle, deadline=deadline, cancel=cancel)
        report(Phase.DOWNLOADING)
        blob, content_type = client.download(result_json, deadline=deadline, cancel=cancel)
        info = imageinfo.check_result(blob, None)
        blob = imageinfo.strip_text(blob)  # no server text is kept or handed on
    except CancelledError as exc:
        _note(journal, request_id, State.CANCELLED)
        if not finished:
            raise  # wait() has asked fal to cancel it, and says how that went
        raise CancelledError(
            _(
                "Cancelled (the request had already finished on fal; its result can be "
                "recovered from the journal)"
            ),
            request_id=request_id,
        ) from exc
    except OutpaintTimeoutError as exc:
        if finished:  # wait() cancels on its own; result or download ran out of time
            exc = client.timed_out_on_fal(handle, exc)
        if isinstance(exc, FinishedLateError):  # fal has the result: recoverable
            _note(journal, request_id, State.COMPLETED)
        # Cancelled on fal before it finished (wait() asked): no result will come.
        gone = not finished and not isinstance(exc, FinishedLateError)
        _note(journal, request_id, State.CANCELLED if gone else State.FAILED, error=str(exc))
        raise exc from None
    except OutpaintError as exc:
        _note(journal, request_id, State.FAILED, error=str(exc))
        raise
    except MemoryError:
        short = ResultError(_("Out of memory while fetching the result"), request_id=request_id)
        _note(journal, request_id, State.FAILED, error=str(short))
        raise short from None
    except Exception as exc:  # after a submit every failure must name it
        error = OutpaintError(
            _("Unexpected error ({kind}): {problem}").format(kind=type(exc).__name__, problem=exc),
            request_id=request_id,
        )
        _note(journal, request_id, State.FAILED, error=str(error))
        raise error from exc
    try:
        cached = journal.store_result(request_id, blob, info.content_type)
    except OSError:
        pass  # the result is in hand; fal keeps it too, and the id is in the journal
    else:
        _note(journal, request_id, State.DOWNLOADED, result_path=str(cached))
    return blob, content_type


def _note(
    journal: Journal,
    request_id: str,
    state: State,
    error: str | None = None,
    result_path: str | None = None,
) -> None:
    """A state change in the journal, best effort: the submit record is what recovery needs."""
    with contextlib.suppress(OSError):
        journal.mark(request_id, state, error=error, result_path=result_path)


def _plan_record(job: Job, encoding: payload.Encoding, payload_bytes: int) -> PlanRecord:
    plan = job.plan
    src = plan.source
    ref = src.reference
    width, height = plan.request_output
    return PlanRecord(
        canvas=(src.canvas_width, src.canvas_height),
        reference=(ref.x, ref.y, ref.width, ref.height),
        request_output=(width, height),
        scale=plan.scale,
        encoding=encoding.format,
        payload_bytes=payload_bytes,
        mode=job.options.mode,
        output_format=job.options.output_format,
        cost_usd_estimate=plan.cost_usd,
    )
