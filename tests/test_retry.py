"""The retry policy as a table: what is repeated, what is never repeated, and how long we wait."""

from __future__ import annotations

import pytest
from flux_outpaint import retry
from flux_outpaint.retry import ErrorKind, Op, decide

E = ErrorKind

# (op, status, error, has_request_id, user_timeout, retry?, outcome_unknown?)
TABLE = [
    # submit: repeat only what provably never reached fal's queue
    (Op.SUBMIT, None, E.CONNECT, False, False, True, False),
    (Op.SUBMIT, None, E.CONNECT_TIMEOUT, False, False, True, False),
    (Op.SUBMIT, None, E.POOL_TIMEOUT, False, False, True, False),
    (Op.SUBMIT, None, E.WRITE, False, False, False, True),
    (Op.SUBMIT, None, E.READ, False, False, False, True),
    (Op.SUBMIT, None, E.READ_TIMEOUT, False, False, False, True),
    (Op.SUBMIT, 408, None, False, False, True, False),
    (Op.SUBMIT, 409, None, False, False, True, False),
    (Op.SUBMIT, 429, None, True, False, True, False),
    # a 5xx without a request id from a proxy that is not fal's ingress (no "nginx" in the
    # body) may come after the queue accepted the job: never repeated, outcome unknown
    (Op.SUBMIT, 502, None, False, False, False, True),
    (Op.SUBMIT, 503, None, False, False, False, True),
    (Op.SUBMIT, 504, None, False, False, False, True),
    (Op.SUBMIT, 502, None, True, False, False, False),  # fal's own 5xx: it saw the request
    (Op.SUBMIT, 503, None, True, False, False, False),
    (Op.SUBMIT, 500, None, False, False, False, False),
    (Op.SUBMIT, 504, None, False, True, False, False),  # user timeout is final
    (Op.SUBMIT, 400, None, False, False, False, False),
    (Op.SUBMIT, 401, None, True, False, False, False),
    (Op.SUBMIT, 422, None, True, False, False, False),
    # status: read-only, repeat every transient failure
    (Op.STATUS, None, E.READ, False, False, True, False),
    (Op.STATUS, None, E.READ_TIMEOUT, False, False, True, False),
    (Op.STATUS, None, E.WRITE, False, False, True, False),
    (Op.STATUS, 500, None, True, False, True, False),
    (Op.STATUS, 503, None, True, False, True, False),
    (Op.STATUS, 429, None, True, False, True, False),
    (Op.STATUS, 404, None, True, False, False, False),
    (Op.STATUS, 401, None, True, False, False, False),
    (Op.STATUS, 501, None, True, False, False, False),
    # result: a 400 right after COMPLETED is "not ready yet"; the model's own errors are final
    (Op.RESULT, 400, None, True, False, True, False),
    (Op.RESULT, None, E.READ_TIMEOUT, False, False, True, False),
    (Op.RESULT, 502, None, False, False, True, False),
    (Op.RESULT, 502, None, True, False, False, False),
    (Op.RESULT, 422, None, True, False, False, False),
    (Op.RESULT, 499, None, True, False, False, False),
    (Op.RESULT, 504, None, True, True, False, False),
    (Op.RESULT, 404, None, True, False, False, False),
    # cancel
    (Op.CANCEL, None, E.READ, False, False, True, False),
    (Op.CANCEL, 429, None, True, False, True, False),
    (Op.CANCEL, 400, None, True, False, False, False),
    # storage and CDN: every 5xx is transient, 4xx is final
    (Op.UPLOAD, 500, None, False, False, True, False),
    (Op.UPLOAD, 403, None, False, False, False, False),
    (Op.DOWNLOAD, 503, None, True, False, True, False),
    (Op.DOWNLOAD, None, E.READ, False, False, True, False),
    (Op.DOWNLOAD, 404, None, False, False, False, False),
]


@pytest.mark.parametrize(("op", "status", "error", "rid", "user", "again", "unknown"), TABLE)
def test_decision_table(op, status, error, rid, user, again, unknown):
    d = decide(op, 1, status=status, error=error, has_request_id=rid, user_timeout=user)
    assert d.retry is again, d.reason
    assert d.outcome_unknown is unknown
    assert d.reason
    if again:
        assert 0 < d.delay_s <= retry.BACKOFF_MAX_S
    else:
        assert d.delay_s == 0


@pytest.mark.parametrize("status", [502, 503, 504])
def test_submit_repeats_an_ingress_failure_only_when_the_official_rule_holds(status):
    # fal's ingress (nginx) failed and no request id was assigned: never queued, repeat it
    d = decide(Op.SUBMIT, 1, status=status, ingress_failure=True)
    assert d.retry and not d.outcome_unknown
    # the ingress page, but fal's queue had tagged the answer: it saw the request
    d = decide(Op.SUBMIT, 1, status=status, has_request_id=True, ingress_failure=True)
    assert not d.retry and not d.outcome_unknown
    # read-only calls keep retrying a gateway 5xx whatever its body
    assert decide(Op.RESULT, 1, status=status).retry


@pytest.mark.parametrize("op", list(Op))
def test_attempts_are_capped_per_operation(op):
    cap = retry.MAX_ATTEMPTS[op]
    assert decide(op, cap - 1, error=E.CONNECT).retry
    last = decide(op, cap, error=E.CONNECT)
    assert not last.retry and "attempts" in last.reason


def test_backoff_doubles_until_the_cap_and_jitter_stays_in_bounds():
    nominal = [retry.backoff_s(n, rand=0.5) for n in range(1, 9)]
    assert nominal[:4] == [0.5, 1.0, 2.0, 4.0]
    assert nominal[-1] == retry.BACKOFF_MAX_S
    for n in range(1, 9):
        low, high = retry.backoff_s(n, 0.0), retry.backoff_s(n, 0.999999)
        assert low == pytest.approx(nominal[n - 1] * (1 - retry.JITTER))
        assert low < high <= retry.BACKOFF_MAX_S


def test_retry_after_is_honoured_as_a_minimum():
    d = decide(Op.STATUS, 1, status=429, retry_after_s=7.0, rand=0.0)
    assert d.retry and d.delay_s == 7.0
    short = decide(Op.STATUS, 3, status=429, retry_after_s=0.1, rand=0.5)
    assert short.delay_s == retry.backoff_s(3, 0.5)


def test_retry_after_longer_than_the_cap_gives_up():
    d = decide(Op.SUBMIT, 1, status=429, retry_after_s=retry.RETRY_AFTER_MAX_S + 1)
    assert not d.retry and "wait" in d.reason


def test_no_retry_that_would_cross_the_deadline_or_the_budget():
    assert not decide(Op.STATUS, 1, error=E.READ, remaining_s=0.1, rand=0.5).retry
    assert decide(Op.STATUS, 1, error=E.READ, remaining_s=5.0, rand=0.5).retry
    spent = decide(Op.STATUS, 2, error=E.READ, elapsed_s=retry.RETRY_BUDGET_S - 0.1)
    assert not spent.retry


def test_decide_needs_exactly_one_cause():
    with pytest.raises(ValueError):
        decide(Op.STATUS, 1)
    with pytest.raises(ValueError):
        decide(Op.STATUS, 1, status=500, error=E.READ)


@pytest.mark.parametrize(
    ("value", "now", "expected"),
    [
        ("3", None, 3.0),
        (" 2.5 ", None, 2.5),
        ("-4", None, 0.0),
        ("", None, None),
        (None, None, None),
        ("soon", 0.0, None),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 1445412480.0, 10.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490.0, 0.0),
        ("Wed, 21 Oct 2015 07:28:10 GMT", None, None),
    ],
)
def test_parse_retry_after(value, now, expected):
    assert retry.parse_retry_after(value, now) == expected


def test_waiting_constants_keep_cancel_and_completion_prompt():
    # The brief for the wait loop: cancel noticed within ~0.5 s, completion while polling
    # within a poll interval; these are the constants the client uses for that.
    assert retry.CANCEL_CHECK_INTERVAL_S <= 0.5
    assert retry.POLL_INTERVAL_RUNNING_S <= retry.POLL_INTERVAL_QUEUED_S <= 1.0
    assert retry.DEFAULT_TIMEOUTS.stream_idle > 15.0  # fal's keep-alive period
    assert retry.DEFAULT_DEADLINE_S > 0


def test_time_scale_shortens_our_backoff_but_never_a_servers_retry_after():
    plain = decide(Op.STATUS, 2, status=503, rand=0.5)
    fast = decide(Op.STATUS, 2, status=503, rand=0.5, time_scale=0.1)
    assert fast.retry and fast.delay_s == pytest.approx(plain.delay_s * 0.1)
    told = decide(Op.SUBMIT, 1, status=429, retry_after_s=3.0, rand=0.5, time_scale=0.1)
    assert told.retry and told.delay_s == 3.0
