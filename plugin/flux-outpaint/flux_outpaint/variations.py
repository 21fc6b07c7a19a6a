"""Several takes of one outpaint: N requests for the same reference, run side by side.

fal's outpaint endpoint returns one image per request and takes no seed, so N variations are
N requests with the same body.  Each is an ordinary ``pipeline.run_job``: journaled before
anything waits on it, submitted exactly once, its result cached; all of one run share a
``run`` id in the journal so recover can bring the whole set back.  The reference is encoded
once.  At most ``MAX_PARALLEL`` requests are in flight.  A cancel stops the takes that have
not been submitted yet and cancels the others on fal.

One take failing does not fail the others: every take ends as a result or an error, and the
caller places what succeeded and names each request that did not (``failure_line``).  Every
take's last report says how it ended (done, failed or cancelled), so a window can show one row
per take (``take_status``).  ``recovery.members`` finds the requests of one run again.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from . import payload
from .errors import MAX_MESSAGE, CancelledError, OutpaintError, request_suffix, user_message
from .i18n import N_, _, ngettext
from .journal import Journal
from .journal_records import TakeOf
from .pipeline import Job, JobResult, run_job
from .planning import MAX_VARIATIONS
from .queue_client import FalQueueClient
from .retry import DEFAULT_DEADLINE_S
from .status import Phase, Progress

__all__ = [
    "MAX_PARALLEL",
    "MAX_VARIATIONS",
    "Take",
    "failure_line",
    "queue_position",
    "run_variations",
    "take_state",
    "take_status",
    "takes_summary",
]

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
        purpose = job.purpose.with_take(TakeOf(run_id, index + 1, count))
        started = clock()

        def report(progress: Progress) -> None:
            if on_progress is not None:
                on_progress(index, progress)

        def ended(exc: OutpaintError) -> Take:
            # run_job reports nothing once it raises; a window showing each take's state
            # must still learn that this one is over
            phase = Phase.CANCELLED if isinstance(exc, CancelledError) else Phase.FAILED
            report(Progress(phase, elapsed_s=clock() - started, request_id=exc.request_id))
            return Take(index, error=exc)

        if cancel.is_set():  # never submitted: nothing to cancel on fal, nothing billed
            return ended(CancelledError("Cancelled"))
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
            return ended(exc)
        except Exception as exc:  # noqa: BLE001 - a bug in one take must not lose the others
            return ended(OutpaintError(user_message(exc)))
        return Take(index, result=result)

    with ThreadPoolExecutor(max_workers=min(count, MAX_PARALLEL)) as pool:
        return list(pool.map(one, range(count)))


def failure_line(
    takes: list[Take],
    secrets: tuple[str, ...] = (),
    *,
    what: str = "failed",
    limit: int = MAX_MESSAGE,
) -> str:
    """One line naming each failed take and its request, e.g. for a partial success.

    ``what``: "failed" or "not recovered" (how the head of the line reads).  Takes that failed
    for the same reason share it ("variations 1, 3 (requests A, B): …"), and the reasons are
    shortened before any take or request id is: the line fits ``limit`` (what
    ``errors.one_line`` lets through) with every failed request still named in it.
    """
    failed = [t for t in takes if t.error is not None]
    if not failed:
        return ""
    groups: dict[str, list[Take]] = {}
    for take in failed:
        assert take.error is not None
        groups.setdefault(_reason(take.error, secrets), []).append(take)
    heads_by_what = {
        "failed": ngettext(
            "{failed} of {count} variations failed: ",
            "{failed} of {count} variations failed: ",
            len(failed),
        ),
        "not recovered": ngettext(
            "{failed} of {count} variations could not be recovered: ",
            "{failed} of {count} variations could not be recovered: ",
            len(failed),
        ),
    }
    head = heads_by_what[what].format(failed=len(failed), count=len(takes))
    for word in (True, False):  # without the word when the ids would not fit otherwise
        heads = [_who(group, word) for group in groups.values()]
        fixed = len(head) + sum(len(h) + 2 for h in heads) + 2 * (len(heads) - 1)
        room = (limit - fixed) // len(heads)
        if room >= MIN_REASON_CHARS:
            break
    room = max(room, MIN_REASON_CHARS // 2)
    parts = [
        _("{who}: {reason}").format(who=h, reason=_cut(reason, room))
        for h, reason in zip(heads, groups, strict=True)
    ]
    return head + _("; ").join(parts)


# Each reason keeps at least this much of its text, else the ids lose the word "request";
# four different reasons with four 36-character request ids then still fit errors.MAX_MESSAGE.
MIN_REASON_CHARS = 12


def _reason(error: OutpaintError, secrets: tuple[str, ...]) -> str:
    """The message without the request (named separately, with the take)."""
    text = user_message(error, secrets)
    suffix = request_suffix(error.request_id) if error.request_id else ""
    return text[: -len(suffix)] if suffix and text.endswith(suffix) else text


def _who(group: list[Take], word: bool) -> str:
    numbers = ", ".join(str(t.index + 1) for t in group)
    ids = [t.error.request_id for t in group if t.error is not None and t.error.request_id]
    text = ngettext("variation {numbers}", "variations {numbers}", len(group)).format(
        numbers=numbers
    )
    if ids:
        joined = ", ".join(ids)
        if word:
            label = ngettext("request {ids}", "requests {ids}", len(ids)).format(ids=joined)
        else:
            label = joined
        text += f" ({label})"
    return text


def _cut(text: str, room: int) -> str:
    return text if len(text) <= room else text[: room - 1].rstrip() + "…"


_SENDING = frozenset({Phase.ENCODING, Phase.UPLOADING, Phase.SUBMITTING})

# A take's states, from the furthest behind to the finished: the order a summary names them.
_STATES = {
    "waiting": N_("waiting to start"),
    "sending": N_("sending"),
    "queued": N_("queued"),
    "running": N_("running"),
    "downloading": N_("downloading"),
    "done": N_("done"),
    "failed": N_("failed"),
    "cancelled": N_("cancelled"),
}


def take_state(progress: Progress | None) -> str:
    """A take's state as a key of ``_STATES`` (None: not heard from yet)."""
    if progress is None:
        return "waiting"
    if progress.phase in _SENDING:
        return "sending"
    return progress.phase.value


def take_status(progress: Progress | None) -> str:
    """A take's state in a word or two, for one row of a wait window (None: not started).

    No queue position: every take of one person sits in the same queue, so a window shows
    fal's position once (``queue_position``), not per row."""
    return _(_STATES[take_state(progress)])


def queue_position(progress: Mapping[int, Progress]) -> int | None:
    """fal's queue position of the first take in line (1 = next), or None when none waits."""
    waiting = [
        p.queue_position
        for p in progress.values()
        if p.phase is Phase.QUEUED and p.queue_position is not None
    ]
    return min(waiting) + 1 if waiting else None


def takes_summary(progress: Mapping[int, Progress], count: int) -> str:
    """One status-bar line for ``count`` takes: how many are in each state, e.g.
    "3 variations: 1 queued, 2 running" (a take not heard from yet is waiting to start)."""
    tally: dict[str, int] = {}
    for index in range(count):
        state = take_state(progress.get(index))
        tally[state] = tally.get(state, 0) + 1
    parts = [
        _("{count} {state}").format(count=tally[state], state=_(label))
        for state, label in _STATES.items()
        if state in tally
    ]
    head = ngettext("{count} variation", "{count} variations", count).format(count=count)
    return _("{head}: {states}").format(head=head, states=", ".join(parts))
