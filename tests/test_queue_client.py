"""The fal queue client against scripted fal answers (httpx.MockTransport, fake clock)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest
from fakes import FakeClock, FakeFal, Reply
from flux_outpaint import errors, retry
from flux_outpaint.queue_client import FalQueueClient
from flux_outpaint.status import Completed, InProgress, Queued, RequestHandle, Status

BASE = "https://queue.fal.run"
KEY = "k3y-id-1234:s3cret-5678"
RID = "0b4e2b1c-6a5f-4c55-9c39-8f0d2a3b9e11"
ROOT = f"{BASE}/fal-ai/flux-2-pro/requests/{RID}"
HANDLE = RequestHandle(RID, f"{ROOT}/status", ROOT, f"{ROOT}/cancel")
SUBMITTED = {
    "request_id": RID,
    "status": "IN_QUEUE",
    "queue_position": 0,
    "status_url": f"{ROOT}/status",
    "response_url": ROOT,
    "cancel_url": f"{ROOT}/cancel",
}
OUTPUT = {"images": [{"url": "https://v3b.fal.media/files/out.png", "content_type": "image/png"}]}


def fake_fal(**routes: list[Reply]) -> FakeFal:
    """fal that answers a submit as request RID (the other routes as ``FakeFal`` says)."""
    return FakeFal(ids=[RID], **routes)


def make(fal: FakeFal, base: str = BASE, **kw) -> tuple[FalQueueClient, FakeClock]:
    clock = FakeClock()
    client = FalQueueClient(
        base,
        KEY,
        transport=httpx.MockTransport(fal),
        sleep=clock.sleep,
        clock=clock,
        rand=lambda: 0.5,
        **kw,
    )
    return client, clock


def status(state: str, code: int = 202, **extra) -> httpx.Response:
    return httpx.Response(code, json={"status": state, **extra})


def log(message: str, ts: str) -> dict:
    return {"message": message, "level": "INFO", "source": "USER", "timestamp": ts}


def seen_as(event: Status) -> tuple[str, int | None, tuple[str, ...]]:
    if isinstance(event, Queued):
        return "queued", event.position, ()
    kind = "completed" if isinstance(event, Completed) else "running"
    return kind, None, event.logs


# -- submit --------------------------------------------------------------------------------


def test_submit_posts_the_body_with_the_key_and_uses_the_returned_urls():
    fal = fake_fal()
    client, _ = make(fal)
    handle = client.submit({"image_url": "data:image/png;base64,AA", "expand_left": 64})
    assert handle == HANDLE
    ((_, req),) = fal.requests
    assert str(req.url) == f"{BASE}/fal-ai/flux-2-pro/outpaint"
    assert req.headers["authorization"] == f"Key {KEY}"
    assert json.loads(req.content) == {"image_url": "data:image/png;base64,AA", "expand_left": 64}


def test_submit_ignores_returned_urls_on_another_host():
    elsewhere = {
        **SUBMITTED,
        "status_url": "https://evil.example/steal",
        "cancel_url": "http://127.0.0.1/x",
    }
    client, _ = make(fake_fal(submit=[httpx.Response(200, json=elsewhere)]))
    handle = client.submit({})
    assert handle == client.handle_for(RID) == HANDLE


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("slow"),
        httpx.PoolTimeout("busy"),
        httpx.Response(429, headers={"retry-after": "3"}),
        httpx.Response(408),
        httpx.Response(409),
        httpx.Response(502, text="<html>nginx</html>"),
        httpx.Response(504, text="<center>nginx</center>"),
    ],
)
def test_submit_repeats_only_what_fal_provably_never_accepted(failure):
    fal = fake_fal(submit=[failure, httpx.Response(200, json=SUBMITTED)])
    client, clock = make(fal)
    assert client.submit({}).request_id == RID
    assert fal.count("submit") == 2
    assert clock.slept and sum(clock.slept) >= (
        3 if isinstance(failure, httpx.Response) and failure.status_code == 429 else 0.25
    )


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("no answer"),
        httpx.ReadError("reset"),
        httpx.WriteError("broken pipe"),
        httpx.WriteTimeout("stuck"),
        httpx.RemoteProtocolError("Server disconnected"),
    ],
)
def test_submit_whose_reply_was_lost_is_never_repeated(failure):
    fal = fake_fal(submit=[failure, httpx.Response(200, json=SUBMITTED)])
    client, _ = make(fal)
    with pytest.raises(errors.SubmitUnknownError) as info:
        client.submit({})
    assert fal.count("submit") == 1
    assert "not sent again" in str(info.value)


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(504),
        httpx.Response(502, text="Bad Gateway"),
        httpx.Response(503, json={"detail": "upstream unavailable"}),
    ],
)
def test_a_proxy_5xx_that_is_not_falls_ingress_is_never_repeated(reply):
    # Another proxy may answer 5xx after fal's queue accepted the job: repeating could bill
    # twice, so the official client's stricter rule applies (no id AND "nginx" in the body).
    fal = fake_fal(submit=[reply, httpx.Response(200, json=SUBMITTED)])
    client, _ = make(fal)
    with pytest.raises(errors.SubmitUnknownError) as info:
        client.submit({})
    assert fal.count("submit") == 1
    assert "not sent again" in str(info.value) and f"HTTP {reply.status_code}" in str(info.value)


def test_submit_answer_without_request_id_is_an_unknown_outcome():
    fal = fake_fal(submit=[httpx.Response(200, text="<html>ok</html>")])
    client, _ = make(fal)
    with pytest.raises(errors.SubmitUnknownError):
        client.submit({})
    assert fal.count("submit") == 1


def test_fal_5xx_with_a_request_id_is_not_repeated():
    fal = fake_fal(
        submit=[
            httpx.Response(
                503,
                headers={"x-fal-request-id": "r-1"},
                json={"detail": "no runners", "error_type": "runner_scheduling_failure"},
            )
        ]
    )
    client, _ = make(fal)
    with pytest.raises(errors.ServerError) as info:
        client.submit({})
    assert fal.count("submit") == 1
    # a header is not our id: quoted as what the server said, never kept as the request's
    assert info.value.request_id is None
    assert "the server said request “r-1”" in str(info.value)
    assert info.value.error_type == "runner_scheduling_failure"
    assert "503" in str(info.value) and "no runners" in str(info.value)


def test_unreachable_server_gives_up_after_the_submit_attempts():
    fal = fake_fal(submit=[httpx.ConnectError("[Errno 111] Connection refused")])
    client, clock = make(fal)
    with pytest.raises(errors.NetworkError) as info:
        client.submit({})
    assert not isinstance(info.value, errors.SubmitUnknownError)
    assert fal.count("submit") == retry.MAX_ATTEMPTS[retry.Op.SUBMIT]
    assert "Could not reach queue.fal.run" in str(info.value)
    assert clock.slept == [retry.backoff_s(n, 0.5) for n in range(1, 5)] or sum(
        clock.slept
    ) == pytest.approx(sum(retry.backoff_s(n, 0.5) for n in range(1, 5)))


# -- errors --------------------------------------------------------------------------------


def test_validation_error_names_the_field_and_keeps_the_ids():
    detail = [
        {
            "loc": ["body", "expand_left"],
            "msg": "ensure this value is <= 2048",
            "type": "value_error",
        }
    ]
    fal = fake_fal(
        result=[httpx.Response(422, headers={"x-fal-request-id": RID}, json={"detail": detail})]
    )
    client, _ = make(fal)
    with pytest.raises(errors.ValidationError) as info:
        client.result(HANDLE)
    assert "expand_left: ensure this value is <= 2048" in str(info.value)
    assert info.value.fields == ("expand_left",) and info.value.request_id == RID
    assert info.value.status == 422 and fal.count("result") == 1


def test_content_policy_violation():
    detail = [{"loc": ["body", "image_url"], "msg": "flagged", "type": "content_policy_violation"}]
    client, _ = make(fake_fal(result=[httpx.Response(422, json={"detail": detail})]))
    with pytest.raises(errors.ContentPolicyError) as info:
        client.result(HANDLE)
    assert "safety filter" in str(info.value)
    assert info.value.error_type == "content_policy_violation"
    assert info.value.request_id == RID  # from the handle when the header is missing


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (
            httpx.Response(499, json={"detail": "cancelled", "error_type": "client_cancelled"}),
            errors.CancelledError,
        ),
        (
            httpx.Response(
                504,
                headers={"X-Fal-Request-Timeout-Type": "user"},
                json={"detail": "timeout", "error_type": "startup_timeout"},
            ),
            errors.OutpaintTimeoutError,
        ),
        (httpx.Response(404, json={"detail": "not found"}), errors.ResultUnavailableError),
        (
            httpx.Response(401, json={"detail": "No user found for Key ID and Secret"}),
            errors.AuthError,
        ),
        (
            httpx.Response(
                500,
                headers={"x-fal-request-id": RID, "x-fal-error-type": "internal_error"},
                text="boom",
            ),
            errors.ServerError,
        ),
    ],
)
def test_result_errors_map_to_the_tree_without_retrying(reply, kind):
    fal = fake_fal(result=[reply])
    client, _ = make(fal)
    with pytest.raises(kind) as info:
        client.result(HANDLE)
    assert fal.count("result") == 1
    assert info.value.request_id == RID


def test_result_too_early_is_retried():
    fal = fake_fal(
        result=[
            httpx.Response(400, json={"detail": "Request is still in progress"}),
            httpx.Response(200, json=OUTPUT),
        ]
    )
    client, _ = make(fal)
    assert client.result(HANDLE) == OUTPUT
    assert fal.count("result") == 2 and fal.count("submit") == 0


def test_rate_limit_still_failing_after_retries():
    fal = fake_fal(result=[httpx.Response(429)])
    client, _ = make(fal)
    with pytest.raises(errors.RateLimitError):
        client.result(HANDLE)
    assert fal.count("result") == retry.MAX_ATTEMPTS[retry.Op.RESULT]


def test_key_never_appears_in_messages_or_repr():
    echo = f"Invalid Authorization header 'Key {KEY}' and {KEY}"
    client, _ = make(fake_fal(result=[httpx.Response(403, json={"detail": echo})]))
    with pytest.raises(errors.AuthError) as info:
        client.result(HANDLE)
    assert KEY not in str(info.value) and "s3cret" not in str(info.value)
    assert KEY not in repr(client) and "***" in repr(client)
    assert info.value.__cause__ is None and info.value.__context__ is None


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.UnsupportedProtocol("no"), httpx.ReadTimeout("slow")],
)
def test_transport_errors_do_not_chain_the_request_that_holds_the_key(failure):
    client, _ = make(fake_fal(result=[failure]))
    with pytest.raises(errors.NetworkError) as info:
        client.result(HANDLE)
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert info.value.request_id is None or KEY not in info.value.request_id


def test_constructor_refuses_bad_settings():
    with pytest.raises(errors.ConfigError):
        FalQueueClient("http://example.com", KEY)
    with pytest.raises(errors.ConfigError):
        FalQueueClient(BASE, "  ")
    with pytest.raises(errors.ConfigError) as info:
        FalQueueClient(BASE, "two words")
    assert "two words" not in str(info.value)


# -- waiting by polling --------------------------------------------------------------------


def test_polling_reports_queue_running_logs_and_completion():
    a, b, c = log("loading", "t1"), log("step 1", "t2"), log("step 2", "t3")
    fal = fake_fal(
        status=[
            status("IN_QUEUE", queue_position=2),
            status("IN_QUEUE", queue_position=1),
            status("IN_PROGRESS", logs=[a]),
            status("IN_PROGRESS", logs=[a, b]),
            status("COMPLETED", 200, logs=[b, c], metrics={"inference_time": 4.5}),
            status("COMPLETED", 200),
        ]
    )
    client, _ = make(fal)
    events: list[Status] = []
    client.wait(HANDLE, on_event=events.append)
    assert [seen_as(e) for e in events] == [
        ("queued", 2, ()),
        ("queued", 1, ()),
        ("running", None, ("loading",)),
        ("running", None, ("step 1",)),
        ("completed", None, ("step 2",)),
    ]
    assert fal.count("status") == 5 and fal.count("stream") == 1
    _, first = next(r for r in fal.requests if r[0] == "status")
    assert first.url.params["logs"] == "1" and first.headers["authorization"] == f"Key {KEY}"


def test_polling_survives_status_failures_and_never_resubmits():
    fal = fake_fal(
        status=[
            httpx.ReadError("reset"),
            httpx.Response(503),
            status("IN_PROGRESS"),
            httpx.ConnectError("refused"),
            status("COMPLETED", 200),
        ]
    )
    client, _ = make(fal, use_stream=False)
    client.wait(HANDLE)
    assert fal.count("submit") == 0 and fal.count("stream") == 0
    assert fal.count("status") == 5


def test_a_completed_request_with_an_error_is_reported_on_the_event():
    fal = fake_fal(
        status=[
            status(
                "COMPLETED", 200, error="Invalid status code: 422", error_type="validation_error"
            )
        ]
    )
    client, _ = make(fal, use_stream=False)
    events: list[Status] = []
    client.wait(HANDLE, on_event=events.append)
    assert isinstance(events[-1], Completed) and events[-1].error_type == "validation_error"


def test_cancel_while_polling_sends_cancel_and_raises():
    cancel = threading.Event()
    fal = fake_fal(status=[status("IN_QUEUE", queue_position=3)])
    client, _ = make(fal, use_stream=False)

    def on_event(event):
        if fal.count("status") == 3:
            cancel.set()

    with pytest.raises(errors.CancelledError) as info:
        client.wait(HANDLE, on_event=on_event, cancel=cancel)
    assert fal.count("cancel") == 1 and fal.count("status") == 3
    assert info.value.request_id == RID and "asked to stop" in str(info.value)


def test_deadline_while_queued_cancels_and_raises_timeout():
    fal = fake_fal(
        status=[status("IN_QUEUE", queue_position=9)],
        cancel=[httpx.Response(400, json={"status": "ALREADY_COMPLETED"})],
    )
    client, clock = make(fal, use_stream=False)
    with pytest.raises(errors.OutpaintTimeoutError) as info:
        client.wait(HANDLE, deadline=clock.now + 5.0)
    assert clock.now == pytest.approx(105.0)
    assert fal.count("cancel") == 1 and info.value.request_id == RID
    assert "journal" in str(info.value)  # it finished after all: recoverable


# -- waiting on the event stream -----------------------------------------------------------


def sse_response(
    events: list[dict],
    hold: threading.Event | None = None,
    finished: threading.Event | None = None,
    fail: Exception | None = None,
) -> Callable[[httpx.Request], httpx.Response]:
    def body() -> Iterator[bytes]:
        try:
            for event in events:
                yield f"data: {json.dumps(event)}\n\n".encode()
            if fail is not None:
                raise fail
            while hold is not None and not hold.wait(0.02):
                yield b": keepalive\n\n"
        finally:
            if finished is not None:
                finished.set()

    return lambda request: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=body()
    )


def test_stream_completion_is_acted_on_without_waiting_for_the_stream_to_end():
    hold, finished = threading.Event(), threading.Event()
    events_sent = [
        {"status": "IN_QUEUE", "queue_position": 1},
        {"status": "IN_PROGRESS", "logs": [log("a", "1")]},
        {
            "status": "COMPLETED",
            "logs": [log("a", "1"), log("b", "2")],
            "metrics": {"inference_time": 1.0},
        },
    ]
    fal = fake_fal(stream=[sse_response(events_sent, hold, finished)])
    client, _ = make(fal)
    seen: list[Status] = []
    try:
        client.wait(HANDLE, on_event=seen.append)
        assert not finished.is_set()  # the server still holds the stream open
    finally:
        hold.set()
    assert finished.wait(5)
    assert [seen_as(e) for e in seen] == [
        ("queued", 1, ()),
        ("running", None, ("a",)),
        ("completed", None, ("b",)),
    ]
    assert fal.count("status") == 0
    ((_, req),) = [r for r in fal.requests if r[0] == "stream"]
    assert req.url.params["logs"] == "1" and req.headers["authorization"] == f"Key {KEY}"


def test_broken_stream_falls_back_to_polling_without_repeating_logs():
    first = {"status": "IN_PROGRESS", "logs": [log("a", "1")]}
    fal = fake_fal(
        stream=[sse_response([first], fail=httpx.ReadError("reset"))],
        status=[status("COMPLETED", 200, logs=[log("a", "1"), log("b", "2")])],
    )
    client, _ = make(fal)
    seen: list[Status] = []
    client.wait(HANDLE, on_event=seen.append)
    assert [seen_as(e)[2] for e in seen] == [("a",), ("b",)]
    assert isinstance(seen[0], InProgress)
    assert fal.count("status") == 1 and fal.count("submit") == 0


def test_stream_that_is_not_an_event_stream_falls_back_to_polling():
    fal = fake_fal(
        stream=[httpx.Response(200, json={"status": "IN_QUEUE"})], status=[status("COMPLETED", 200)]
    )
    client, _ = make(fal)
    client.wait(HANDLE)
    assert fal.count("stream") == 1 and fal.count("status") == 1


def test_cancel_is_noticed_while_the_stream_is_silent():
    hold, finished = threading.Event(), threading.Event()
    cancel = threading.Event()
    fal = fake_fal(stream=[sse_response([{"status": "IN_PROGRESS", "logs": []}], hold, finished)])
    clock = FakeClock()
    client = FalQueueClient(
        BASE, KEY, transport=httpx.MockTransport(fal), sleep=clock.sleep, rand=lambda: 0.5
    )  # real clock: the stream reader runs for real
    try:
        with pytest.raises(errors.CancelledError):
            client.wait(HANDLE, on_event=lambda e: cancel.set(), cancel=cancel)
        assert fal.count("cancel") == 1
    finally:
        hold.set()
    assert finished.wait(5)  # the reader thread let go of the stream


# -- cancel and upload ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        (httpx.Response(202, json={"status": "CANCELLATION_REQUESTED"}), "CANCELLATION_REQUESTED"),
        (httpx.Response(200, json={"status": "OK"}), "OK"),
        (httpx.Response(400, json={"status": "ALREADY_COMPLETED"}), "ALREADY_COMPLETED"),
        (httpx.Response(404, json={"status": "NOT_FOUND"}), "NOT_FOUND"),
        (httpx.Response(404, text="nope"), "NOT_FOUND"),
        (httpx.Response(202), "CANCELLATION_REQUESTED"),
    ],
)
def test_cancel_outcomes(reply, outcome):
    fal = fake_fal(cancel=[reply])
    client, _ = make(fal)
    assert client.cancel(HANDLE) == outcome
    ((_, req),) = fal.requests
    assert req.method == "PUT" and str(req.url) == f"{ROOT}/cancel"


def upload_fal(upload_url: str, seen: list[httpx.Request]) -> FakeFal:
    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/storage/upload/initiate":
            return httpx.Response(
                200,
                json={"upload_url": upload_url, "file_url": "https://v3.fal.media/files/ref.png"},
            )
        return httpx.Response(200)

    return fake_fal(other=[respond])


def test_upload_to_fal_storage():
    seen: list[httpx.Request] = []
    client, _ = make(upload_fal("https://storage.example.com/signed?sig=1", seen))
    assert client.upload(b"PNGDATA", "image/png", "reference.png") == (
        "https://v3.fal.media/files/ref.png"
    )
    init, put = seen
    assert str(init.url) == "https://rest.fal.ai/storage/upload/initiate?storage_type=fal-cdn-v3"
    assert init.headers["authorization"] == f"Key {KEY}"
    assert json.loads(init.content) == {"file_name": "reference.png", "content_type": "image/png"}
    assert put.method == "PUT" and put.content == b"PNGDATA"
    assert put.headers["content-type"] == "image/png"
    assert "authorization" not in put.headers  # a signed URL on another host gets no key


def test_upload_on_a_local_server_uses_its_origin():
    local = "http://127.0.0.1:8765"
    seen: list[httpx.Request] = []
    client, _ = make(upload_fal(f"{local}/storage/put/abc", seen), base=f"{local}/prefix")
    client.upload(b"x", "image/jpeg")
    assert str(seen[0].url).startswith(f"{local}/storage/upload/initiate")
    assert str(seen[1].url) == f"{local}/storage/put/abc"


def test_upload_refuses_a_plain_http_upload_url():
    seen: list[httpx.Request] = []
    client, _ = make(upload_fal("http://storage.example.com/put", seen))
    with pytest.raises(errors.ApiError):
        client.upload(b"x", "image/png")
    assert len(seen) == 1


def test_status_once_and_handle_for():
    fal = fake_fal(status=[status("IN_QUEUE", queue_position=4, logs=None)])
    client, _ = make(fal)
    assert client.handle_for(RID) == HANDLE
    assert client.status(HANDLE) == Queued(4)


# -- hostile answers -----------------------------------------------------------------------


def test_a_json_answer_over_the_cap_is_refused_without_reading_it_all():
    big = b'{"status": "IN_PROGRESS", "pad": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    pulled = []

    def body():  # no Content-Length: only the running count can stop it
        for i in range(0, len(big), 65536):
            pulled.append(i)
            yield big[i : i + 65536]

    fal = fake_fal(status=[lambda r: httpx.Response(202, content=body())])
    client, _ = make(fal, use_stream=False)
    with pytest.raises(errors.ApiError, match="larger than 4 MiB") as info:
        client.status(HANDLE)
    assert info.value.request_id == RID
    assert len(pulled) < len(big) // 65536
    assert fal.count("status") == 1  # a bloated answer is not asked for again


def test_a_declared_length_over_the_cap_is_refused_before_reading():
    fal = fake_fal(result=[httpx.Response(200, headers={"content-length": str(400 << 20)})])
    client, _ = make(fal)
    with pytest.raises(errors.ApiError, match="larger than") as info:
        client.result(HANDLE)
    assert info.value.request_id == RID


def test_a_bloated_submit_answer_is_an_unknown_outcome_not_a_retry():
    fal = fake_fal(submit=[httpx.Response(200, headers={"content-length": str(100 << 20)})])
    client, _ = make(fal)
    with pytest.raises(errors.SubmitUnknownError, match="larger than"):
        client.submit({})
    assert fal.count("submit") == 1


@pytest.mark.parametrize("code", [301, 302, 307, 308])
def test_redirects_are_refused_by_name(code):
    moved = httpx.Response(code, headers={"location": "https://elsewhere.example/x.png"})
    client, _ = make(fake_fal(result=[moved]))
    with pytest.raises(errors.ApiError, match="redirect refused"):
        client.result(HANDLE)
    fal = fake_fal(file=[moved])
    client, _ = make(fal)
    with pytest.raises(errors.ResultError, match="redirect refused"):
        client.download({"images": [{"url": "https://v3b.fal.media/files/out.png"}]})
    assert fal.count("file") == 1 and len(fal.requests) == 1  # never followed


def test_a_tls_certificate_failure_is_final_and_says_so():
    import ssl

    def refuse(request):
        cause = ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed")
        raise httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED]") from cause

    fal = fake_fal(submit=[refuse])
    client, clock = make(fal)
    with pytest.raises(errors.NetworkError) as info:
        client.submit({})
    assert fal.count("submit") == 1 and clock.slept == []
    assert "certificate" in str(info.value) and "not retried" in str(info.value)


def test_returned_urls_carrying_a_query_or_credentials_are_not_used():
    key_in_url = {
        **SUBMITTED,
        "status_url": f"{ROOT}/status?key={KEY}",
        "response_url": f"https://user:pw@queue.fal.run/fal-ai/flux-2-pro/requests/{RID}",
        "cancel_url": f"{ROOT}/cancel#{KEY}",
    }
    client, _ = make(fake_fal(submit=[httpx.Response(200, json=key_in_url)]))
    assert client.submit({}) == HANDLE
    odd = {**SUBMITTED, "status_url": f"{ROOT}/status\x1b]0;x\x07", "cancel_url": 5}
    client, _ = make(fake_fal(submit=[httpx.Response(200, json=odd)]))
    assert client.submit({}) == HANDLE


def test_hostile_log_lines_reach_the_caller_cleaned():
    echo = log(f"key {KEY}\x1b]0;pwned\x07\nin.png -> /tmp/elsewhere.png\x1b[2J", "1")
    fal = fake_fal(status=[status("IN_PROGRESS", logs=[echo]), status("COMPLETED", 200)])
    client, _ = make(fal, use_stream=False)
    seen: list[Status] = []
    client.wait(HANDLE, on_event=seen.append)
    (line,) = seen[0].logs
    assert line == "key *** in.png -> /tmp/elsewhere.png"


def test_a_malformed_result_url_is_a_result_error():
    client, _ = make(fake_fal())
    with pytest.raises(errors.ResultError, match="malformed result URL"):
        client.download({"images": [{"url": "https://[::1"}]})
    with pytest.raises(errors.ResultError, match="malformed result URL"):
        client.download({"images": [{"url": "https://cdn.example.com/a b.png"}]})


def test_messages_name_a_host_never_the_user_name_of_its_url():
    from flux_outpaint.caller import host_of as _host

    assert _host(f"https://{KEY}@cdn.example.com:8443/a.png") == "cdn.example.com:8443"
    assert _host("https://[::1]:9/x") == "[::1]:9"
    assert _host("https://[::1") == "the server"
    client, _ = make(fake_fal())
    with pytest.raises(errors.ResultError, match="user name") as info:
        client.download({"images": [{"url": f"https://{KEY}@cdn.example.com/a.png"}]})
    assert "s3cret" not in str(info.value)


def test_each_retry_is_logged_with_its_reason_and_never_server_text(caplog):
    fal = fake_fal(
        submit=[httpx.Response(429, text=f"busy {KEY}"), httpx.Response(200, json=SUBMITTED)],
        result=[httpx.Response(503, text="<html>nginx</html>"), httpx.Response(200, json=OUTPUT)],
    )
    client, _ = make(fal)
    with caplog.at_level("INFO", logger="flux_outpaint.caller"):
        handle = client.submit({"image_url": "data:,"})
        client.result(handle)
    lines = [r.getMessage() for r in caplog.records if r.name == "flux_outpaint.caller"]
    assert lines[0].startswith("submit attempt 1 failed (HTTP 429); retrying in ")
    assert lines[1].startswith("result attempt 1 failed (HTTP 503 from the gateway)")
    assert lines[1].endswith(f"(request {RID})")
    assert len(lines) == 2
    assert not any(KEY in line or "nginx" in line or "busy" in line for line in lines)
