"""Several takes of one outpaint: N requests for the same reference, run side by side.

fal's outpaint endpoint returns one image per request and takes no seed, so N variations are
N requests with the same body.  Each is an ordinary ``pipeline.run_job``: journaled before
anything waits on it, submitted exactly once, its result cached; all of one run share a
``run`` id in the journal so recover can bring the whole set back.  The reference is encoded
once.  At most ``MAX_PARALLEL`` requests are in flight.  A cancel stops the takes that have
not been submitted yet and cancels the others on fal.

One take failing does not fail the others: every take ends as a result or an error, and the
caller places what succeeded and names each request that did not (``failure_line``).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from . import payload
from .errors import CancelledError, OutpaintError, user_message
from .journal import Journal
from .pipeline import Job, JobResult, run_job
from .queue_client import FalQueueClient
from .retry import DEFAULT_DEADLINE_S
from .status import Progress

__all__ = [
    "MAX_PARALLEL",
    "MAX_VARIATIONS",
    "Take",
    "failure_line",
    "run_variations",
]

MAX_VARIATIONS = 4
# fal queues what it cannot run at once; more than a few requests in flight from one person
# only adds queue time and connections.
MAX_PARALLEL = 4

TakeProgress = Callable[[int, Progress], None]


@dataclass(frozen=True)
class Take:
    """How one variation ended: a result, or the error that stopped it (never both)."""

    index: int  # 0-based; people see index + 1
    result: JobResult | None = None
    error: OutpaintError | None = None

    @property
    def ok(self) -> bool:
        return self.result is not None


def _encode_once(encoder: payload.Encoder) -> payload.Encoder:
    """The same reference for every take: encode it the first time, hand out those bytes."""
    lock = threading.Lock()
    done: dict[str, bytes] = {}

    def encode(rgba: bytes, width: int, height: int, encoding: payload.Encoding) -> bytes:
        with lock:
            if "data" not in done:
                done["data"] = encoder(rgba, width, height, encoding)
            return done["data"]

    return encode


def run_variations(
    job: Job,
    count: int,
    *,
    client: FalQueueClient,
    journal: Journal,
    encoder: payload.Encoder,
    on_progress: TakeProgress | None = None,
    cancel: threading.Event | None = None,
    deadline_s: float = DEFAULT_DEADLINE_S,
    clock: Callable[[], float] = time.monotonic,
) -> list[Take]:
    """Run ``count`` takes of ``job``; one ``Take`` per variation, in order."""
    if not 1 <= count <= MAX_VARIATIONS:
        raise ValueError(f"variations must be 1..{MAX_VARIATIONS}, not {count}")
    cancel = cancel if cancel is not None else threading.Event()
    shared = _encode_once(encoder)
    run_id = uuid.uuid4().hex

    def one(index: int) -> Take:
        if cancel.is_set():  # never submitted: nothing to cancel on fal, nothing billed
            return Take(index, error=CancelledError("Cancelled"))
        purpose = {**job.purpose, "run": run_id, "variation": index + 1, "variations": count}

        def report(progress: Progress) -> None:
            if on_progress is not None:
                on_progress(index, progress)

        try:
            result = run_job(
                replace(job, purpose=purpose),
                client=client,
                journal=journal,
                encoder=shared,
                on_progress=report,
                cancel=cancel,
                deadline_s=deadline_s,
                clock=clock,
            )
        except OutpaintError as exc:
            return Take(index, error=exc)
        except Exception as exc:  # noqa: BLE001 - a bug in one take must not lose the others
            return Take(index, error=OutpaintError(user_message(exc)))
        return Take(index, result=result)

    with ThreadPoolExecutor(max_workers=min(count, MAX_PARALLEL)) as pool:
        return list(pool.map(one, range(count)))


def failure_line(takes: list[Take], secrets: tuple[str, ...] = ()) -> str:
    """One line naming each failed take and its request, e.g. for a partial success."""
    failed = [t for t in takes if t.error is not None]
    if not failed:
        return ""
    parts = []
    for take in failed:
        assert take.error is not None
        parts.append(f"variation {take.index + 1}: {user_message(take.error, secrets)}")
    head = f"{len(failed)} of {len(takes)} variations failed"
    return f"{head}: " + "; ".join(parts)
