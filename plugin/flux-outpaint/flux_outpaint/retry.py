"""Retry and timeout policy for every network call: named constants and one pure decision.

``decide`` is the whole policy: given what just failed it answers "retry after N seconds" or
"give up".  It takes no clock, no randomness and no I/O (the jitter draw is an argument), so
the table in tests/test_retry.py pins it down completely.

Why a submit is special
-----------------------
Every submit that fal accepts is billed.  fal gives no idempotency key, so sending the same
body twice can run (and bill) the job twice.  A submit is therefore repeated only when the
failure proves the queue never accepted it:

* the connection was never established (connect error / connect or pool timeout): no byte
  of the request left this machine;
* 408 / 409 / 429: the gateway refused the request before queueing it (the official
  clients retry these too);
* 502 / 503 / 504 **without** ``x-fal-request-id`` **and** with a body that shows the
  ingress itself failed (it names ``nginx``, fal's ingress): the answer came from the front
  door, not from fal's queue, which puts that header on every response it produces, so no
  request id was assigned.  This is the official client's rule.  A 502/503/504 from some
  other proxy may come after the queue accepted the job: its outcome is unknown.

Any other failure after the body was written (write error, read error or read timeout,
dropped connection, such a proxy 5xx) leaves the outcome unknown: a request id may exist.
Such a submit is never sent again; the caller gets ``SubmitUnknownError`` instead.  Status,
result and cancel are read-only or idempotent, so they retry freely and never lead to a new
submit.

Time scale
----------
Every pause the client chooses by itself (backoff, poll intervals, the silent-stream poll)
is multiplied by a time scale, 1 unless ``FLUX_OUTPAINT_TIME_SCALE`` says otherwise
(``settings.time_scale``), so the tests can run the same code paths in a fraction of the
time.  A server's own ``Retry-After`` is never scaled.
"""

from __future__ import annotations

import email.utils
import enum
from dataclasses import dataclass

__all__ = [
    "BACKOFF_BASE_S",
    "BACKOFF_MAX_S",
    "CANCEL_AFTER_DEADLINE_S",
    "CANCEL_BUDGET_S",
    "CANCEL_CHECK_INTERVAL_S",
    "DEFAULT_DEADLINE_S",
    "DEFAULT_TIMEOUTS",
    "INGRESS_STATUSES",
    "JITTER",
    "MAX_ATTEMPTS",
    "NOT_SENT_ERRORS",
    "POLL_INTERVAL_QUEUED_S",
    "POLL_INTERVAL_RUNNING_S",
    "RETRY_AFTER_MAX_S",
    "RETRY_BUDGET_S",
    "STREAM_SILENCE_POLL_S",
    "SUBMIT_CANCEL_GRACE_S",
    "THROTTLE_STATUSES",
    "Decision",
    "ErrorKind",
    "Op",
    "Timeouts",
    "backoff_s",
    "decide",
    "parse_retry_after",
]

# The whole job (upload → submit → wait → result → download) gives up after this long unless
# the caller says otherwise.  fal's own queue may hold a request for minutes at busy times.
DEFAULT_DEADLINE_S = 600.0


class Op(str, enum.Enum):
    SUBMIT = "submit"
    STATUS = "status"
    RESULT = "result"
    CANCEL = "cancel"
    UPLOAD = "upload"
    DOWNLOAD = "download"


class ErrorKind(str, enum.Enum):
    """Transport failures, by how far the request got before it failed."""

    CONNECT = "connect"  # refused, unreachable, DNS, TLS handshake: nothing was sent
    CONNECT_TIMEOUT = "connect_timeout"
    POOL_TIMEOUT = "pool_timeout"  # waited for a free connection: nothing was sent
    WRITE = "write"  # failed while sending: part of the request may have arrived
    READ = "read"  # connection dropped before/while the answer arrived
    READ_TIMEOUT = "read_timeout"  # the request was sent; no answer in time


# The failures that prove the request never left this machine.
NOT_SENT_ERRORS = frozenset({ErrorKind.CONNECT, ErrorKind.CONNECT_TIMEOUT, ErrorKind.POOL_TIMEOUT})

# Attempts per operation, counting the first.  Submit gets few: each one waits on fal's
# front door only.  Status gets more: it runs for the whole wait and is free to repeat.
MAX_ATTEMPTS = {
    Op.SUBMIT: 5,
    Op.STATUS: 8,
    Op.RESULT: 5,
    Op.CANCEL: 3,
    Op.UPLOAD: 4,
    Op.DOWNLOAD: 4,
}

# Exponential backoff: BACKOFF_BASE_S · 2^(attempt-1), capped at BACKOFF_MAX_S, then scaled by
# a jitter factor in [1 - JITTER, 1 + JITTER) and capped again.  Jitter spreads the retries of
# many clients that failed at the same moment (a fal hiccup hits everyone at once).
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 8.0
JITTER = 0.5

# A server that asks for a longer pause than this is not coming back soon: give up and say so.
RETRY_AFTER_MAX_S = 30.0
# No single call keeps retrying for longer than this, whatever its attempt count.
RETRY_BUDGET_S = 60.0

THROTTLE_STATUSES = frozenset({408, 409, 429})
INGRESS_STATUSES = frozenset({502, 503, 504})
# Status polls are read-only, so any server-side 5xx is worth another try.
STATUS_RETRY_STATUSES = frozenset({500, 502, 503, 504})
# Storage and CDN hosts are not fal's queue: no request-id rule, every 5xx is transient.
STORAGE_RETRY_STATUSES = frozenset({500, 502, 503, 504})
# The result endpoint answers 400 while a request is not finished; right after COMPLETED a
# replica may lag, so a few more tries are cheap and harmless.
RESULT_NOT_READY_STATUS = 400

# Waiting: fal's own Python client polls every 0.1 s; we do the same while the job runs (so
# completion is seen within ~0.1 s without the event stream) and relax while it is queued.
POLL_INTERVAL_RUNNING_S = 0.1
POLL_INTERVAL_QUEUED_S = 0.5
# How often a wait looks at the cancel flag and the deadline, whatever it is blocked on.
CANCEL_CHECK_INTERVAL_S = 0.1
# A status stream silent this long is backed by one status poll (then again after as long).
STREAM_SILENCE_POLL_S = 5.0
# The best-effort cancel sent after a user cancel gets at most this long (retries included),
# and after our own deadline at most CANCEL_AFTER_DEADLINE_S, so that a run given N seconds
# ends within about N + 1 s even when fal's cancel endpoint does not answer.
CANCEL_BUDGET_S = 2.0
CANCEL_AFTER_DEADLINE_S = 1.0
# After a cancel, a submit already on the wire gets this long to bring back its request id
# (then the request can be cancelled on fal); after that it is abandoned.
SUBMIT_CANCEL_GRACE_S = 2.0


@dataclass(frozen=True)
class Timeouts:
    """Per-call httpx timeouts, seconds.  Each is clamped to what is left of the deadline.

    httpx's are per operation (a read timeout restarts with each byte); the ``*_total``
    values bound one attempt of a call as a whole, however slowly its bytes trickle in
    (``netbudget``), and they too are clamped to the deadline.
    """

    connect: float = 10.0
    read: float = 60.0  # a status/result/submit answer; fal answers these in well under 1 s
    write: float = 60.0  # a submit may carry a data URI of a few MB
    pool: float = 10.0
    upload: float = 300.0  # PUT of a large reference image on a slow uplink
    download: float = 120.0  # between two chunks of the result image
    # The status stream sends a keep-alive comment every 15 s; this long without a byte means
    # the stream is dead and polling takes over.
    stream_idle: float = 40.0
    total: float = 120.0  # one attempt of submit, status, result or cancel, end to end
    upload_total: float = 900.0
    download_total: float = 300.0


DEFAULT_TIMEOUTS = Timeouts()


@dataclass(frozen=True)
class Decision:
    retry: bool
    delay_s: float = 0.0
    reason: str = ""
    # Set when a submit failed after its body may have reached fal: not retried, and the
    # caller must report that a request id may exist.
    outcome_unknown: bool = False


def backoff_s(attempt: int, rand: float = 0.5) -> float:
    """Pause after failed attempt number ``attempt`` (1-based); ``rand`` is a draw in [0, 1)."""
    nominal = min(BACKOFF_BASE_S * 2.0 ** (attempt - 1), BACKOFF_MAX_S)
    return min(nominal * (1.0 - JITTER + 2.0 * JITTER * rand), BACKOFF_MAX_S)


def parse_retry_after(value: str | None, now_epoch: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    if now_epoch is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now_epoch)


def decide(
    op: Op,
    attempt: int,
    *,
    status: int | None = None,
    error: ErrorKind | None = None,
    has_request_id: bool = False,
    ingress_failure: bool = False,
    user_timeout: bool = False,
    retry_after_s: float | None = None,
    elapsed_s: float = 0.0,
    remaining_s: float | None = None,
    rand: float = 0.5,
    time_scale: float = 1.0,
) -> Decision:
    """Whether to repeat ``op`` after its attempt number ``attempt`` (1-based) failed.

    Exactly one of ``status`` (an HTTP error status) and ``error`` (a transport failure) is
    given.  ``has_request_id`` / ``user_timeout`` / ``retry_after_s`` describe the response
    headers (``x-fal-request-id``, ``X-Fal-Request-Timeout-Type: user``, ``Retry-After``);
    ``ingress_failure`` says the body shows fal's ingress failed (it contains "nginx").
    ``elapsed_s`` is the time since the first attempt, ``remaining_s`` what is left of the
    caller's deadline (None: no deadline).  ``time_scale`` shortens our own backoff only.
    """
    if (status is None) == (error is None):
        raise ValueError("decide() needs exactly one of status and error")
    op = Op(op)

    if error is not None:
        error = ErrorKind(error)
        if op is Op.SUBMIT and error not in NOT_SENT_ERRORS:
            return Decision(
                False, reason=f"submit sent, reply lost ({error.value})", outcome_unknown=True
            )
        transient, why = True, f"transport error ({error.value})"
    else:
        assert status is not None  # checked above: exactly one of the two
        if (
            op is Op.SUBMIT
            and status in INGRESS_STATUSES
            and not has_request_id
            and not ingress_failure
            and not user_timeout
        ):
            return Decision(
                False,
                reason=f"HTTP {status} from a proxy, not from fal's ingress",
                outcome_unknown=True,
            )
        transient, why = _status_is_transient(op, status, has_request_id, user_timeout)

    if not transient:
        return Decision(False, reason=why)
    if attempt >= MAX_ATTEMPTS[op]:
        return Decision(False, reason=f"{why}: gave up after {attempt} attempts")

    delay = backoff_s(attempt, rand) * time_scale
    if retry_after_s is not None and status is not None:
        # Retry-After is the server's minimum; our backoff still applies when it is shorter.
        if retry_after_s > RETRY_AFTER_MAX_S:
            return Decision(False, reason=f"{why}: server asks to wait {retry_after_s:.0f} s")
        delay = max(delay, retry_after_s)

    if elapsed_s + delay > RETRY_BUDGET_S:
        return Decision(False, reason=f"{why}: still failing after {elapsed_s:.0f} s")
    if remaining_s is not None and delay >= remaining_s:
        return Decision(False, reason=f"{why}: no time left before the deadline")
    return Decision(True, delay, why)


def _status_is_transient(
    op: Op, status: int, has_request_id: bool, user_timeout: bool
) -> tuple[bool, str]:
    why = f"HTTP {status}"
    if user_timeout:
        # Our own start timeout expired in fal's queue: repeating cannot help.
        return False, f"{why} (queue timeout)"
    if status in THROTTLE_STATUSES:
        return True, why
    if op in (Op.UPLOAD, Op.DOWNLOAD):
        return status in STORAGE_RETRY_STATUSES, why
    if op is Op.STATUS:
        return status in STATUS_RETRY_STATUSES, why
    if op is Op.RESULT and status == RESULT_NOT_READY_STATUS:
        return True, f"{why} (result not ready)"
    if status in INGRESS_STATUSES and not has_request_id:
        return True, f"{why} from the gateway"
    return False, why
