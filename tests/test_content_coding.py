"""Compressed answers: identity asked for, one gzip layer undone inside the byte cap, every
other coding refused — on every call (submit, its error, status, stream, result, image).

The servers (tests/hostile.py) answer on 127.0.0.1.  A bomb of 300 MiB of zeros is 300 KB
in one gzip layer and under a kilobyte in two; httpx would decode either before any cap saw
a byte.  Memory is measured with tracemalloc (what Python allocated while reading), not
timed.
"""

from __future__ import annotations

import json
import time
import tracemalloc

import pytest
from flux_outpaint import download, errors
from flux_outpaint.queue_client import FalQueueClient
from flux_outpaint.status import Completed, RequestHandle
from hostile import answer, gzip, gzip_zeros, serve

pytestmark = pytest.mark.server  # sockets on loopback

KEY = "coding-test-key-12345"
RID = "7d1c0a22-3333-4c55-9c39-8f0d2a3b9e11"
BOMB = 300 * 1024 * 1024
NESTED = "gzip, gzip"


def handle(base: str) -> RequestHandle:
    root = f"{base}/fal-ai/flux-2-pro/requests/{RID}"
    return RequestHandle(RID, f"{root}/status", root, f"{root}/cancel")


def client(base: str) -> FalQueueClient:
    return FalQueueClient(base, KEY, time_scale=0.01, use_stream=False)


def coded(body: bytes, coding: str) -> bytes:
    for _ in coding.split(","):
        body = gzip(body)
    return body


def test_every_request_asks_for_identity():
    seen: list[str | None] = []

    def script(h, stop):
        seen.append(h.headers.get("Accept-Encoding"))
        answer(h, json.dumps({"status": "COMPLETED"}).encode())

    with serve(script) as server:
        client(server.base_url).status(handle(server.base_url))
    assert seen == ["identity"]


def test_one_gzip_layer_within_the_cap_is_read():
    body = json.dumps({"status": "COMPLETED", "logs": [{"message": "done"}]}).encode()
    with serve(lambda h, stop: answer(h, gzip(body), content_encoding="gzip")) as server:
        status = client(server.base_url).status(handle(server.base_url))
    assert isinstance(status, Completed) and status.logs == ("done",)


@pytest.mark.parametrize("op", ["submit", "status", "result"])
def test_nested_gzip_is_refused_on_every_json_answer(op):
    inner = json.dumps({"request_id": RID, "status": "COMPLETED"}).encode()
    wire = coded(inner, NESTED)
    with serve(lambda h, stop: answer(h, wire, content_encoding=NESTED)) as server:
        c, h = client(server.base_url), handle(server.base_url)
        call = {"submit": lambda: c.submit({}), "status": lambda: c.status(h)}
        call["result"] = lambda: c.result(h)
        kind = errors.SubmitUnknownError if op == "submit" else errors.ApiError
        with pytest.raises(kind, match="content encoding that is not accepted"):
            call[op]()
        assert server.count("POST") == (1 if op == "submit" else 0)  # never sent twice


@pytest.mark.parametrize("coding", ["br", "zstd", "compress", "gzip, br"])
def test_other_codings_are_refused_unread(coding):
    def script(h, stop):
        answer(h, b"\x00" * 64, content_encoding=coding)

    with serve(script) as server, pytest.raises(errors.ApiError, match="not accepted"):
        client(server.base_url).status(handle(server.base_url))


def test_a_gzip_bomb_stops_at_the_cap_with_bounded_memory():
    wire = gzip_zeros(BOMB)
    assert len(wire) < 400_000
    with serve(lambda h, stop: answer(h, wire, content_encoding="gzip")) as server:
        tracemalloc.start()
        try:
            with pytest.raises(errors.ApiError, match="larger than 4 MiB"):
                client(server.base_url).result(handle(server.base_url))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 24 * 1024 * 1024, peak  # the 4 MiB cap, one step, and the wire bytes


def test_a_nested_bomb_on_the_submit_error_costs_nothing():
    # An error answer is read only for its message: an unreadable body is an empty one.
    wire = coded(gzip_zeros(BOMB), "gzip")
    with serve(lambda h, stop: answer(h, wire, status=500, content_encoding=NESTED)) as server:
        tracemalloc.start()
        try:
            started = time.monotonic()
            with pytest.raises(errors.ServerError, match=r"HTTP 500\)$"):
                client(server.base_url).submit({})
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert server.count("POST") == 1
    assert peak < 16 * 1024 * 1024, peak
    assert time.monotonic() - started < 30  # not a timing target: a bomb decoded takes minutes


def test_a_nested_bomb_on_the_image_is_refused():
    wire = coded(gzip_zeros(BOMB), NESTED)

    def script(h, stop):
        answer(h, wire, ctype="image/png", content_encoding=NESTED)

    with serve(script) as server:
        result = {"images": [{"url": f"{server.base_url}/files/out.png"}]}
        with pytest.raises(errors.ResultError, match="content encoding that is not accepted"):
            client(server.base_url).download(result)


def test_a_gzip_bomb_on_the_image_stops_at_the_image_cap():
    wire = gzip_zeros(download.MAX_RESULT_BYTES + 1)

    def script(h, stop):
        answer(h, wire, ctype="image/png", content_encoding="gzip")

    with serve(script) as server:
        result = {"images": [{"url": f"{server.base_url}/files/out.png"}]}
        with pytest.raises(errors.ResultError, match="larger than 64 MiB"):
            client(server.base_url).download(result)


def test_a_corrupt_gzip_answer_is_refused():
    def script(h, stop):
        answer(h, b"\x1f\x8b" + b"junk" * 10, content_encoding="gzip")

    with serve(script) as s, pytest.raises(errors.ApiError, match="could not be decompressed"):
        client(s.base_url).status(handle(s.base_url))


def test_a_compressed_status_stream_gives_way_to_polling():
    done = json.dumps({"status": "COMPLETED"}).encode()
    stream = b"data: " + json.dumps({"status": "IN_PROGRESS"}).encode() + b"\n\n"

    def script(h, stop):
        if h.path.split("?")[0].endswith("/stream"):
            answer(h, coded(stream, "gzip"), ctype="text/event-stream", content_encoding="gzip")
        else:
            answer(h, done)

    with serve(script) as server:
        c = FalQueueClient(server.base_url, KEY, time_scale=0.01)
        c.wait(handle(server.base_url), deadline=time.monotonic() + 20)
        assert server.count("GET", "/status") == 1  # the poll that took over
