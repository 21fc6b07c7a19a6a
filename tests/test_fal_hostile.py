"""The local server's hostile scenarios, seen with raw httpx: each misbehaves as documented."""

from __future__ import annotations

import base64
import io
import json
import time
import zlib

import flux_outpaint_fal_local as fal_local
import httpx
import numpy as np
import pytest
from flux_outpaint_fal_local import hostile
from PIL import Image

pytestmark = pytest.mark.server  # the local fal server on loopback

KEY = "hostile-test-key-5f3a9"
AUTH = {"Authorization": f"Key {KEY}"}
APP = "/fal-ai/flux-2-pro"
WAIT_S = 20.0  # upper bound for a state to be reached; never a speed requirement


def data_uri(w: int = 96, h: int = 80) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), 120, np.uint8)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@pytest.fixture
def start():
    servers = []

    def _start(*scenarios, **kw):
        srv = fal_local.start_server(scenarios=list(scenarios), **kw)
        servers.append(srv)
        return srv

    yield _start
    for srv in servers:
        srv.stop()


@pytest.fixture
def client():
    with httpx.Client(timeout=30) as c:
        yield c


def submit(c, srv, **body) -> dict:
    body = {"image_url": data_uri(), "expand_left": 16, "output_format": "png", **body}
    r = c.post(srv.base_url + APP + "/outpaint", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()


def completed(srv, rid: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while srv._backend.jobs[rid].state != "COMPLETED":
        assert time.monotonic() < deadline, "the job never completed"
        time.sleep(0.02)


def result(c, sub) -> dict:
    r = c.get(sub["response_url"], headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()["images"][0]


def first_byte_times_out(c, url: str, read_s: float = 0.3) -> bool:
    with c.stream("GET", url, headers=AUTH, timeout=httpx.Timeout(5, read=read_s)) as r:
        assert r.status_code in (200, 202) and int(r.headers["content-length"]) > 10
        try:
            next(r.iter_raw(1))
            next(r.iter_raw(1))
        except httpx.ReadTimeout:
            return True
    return False


def test_trickle_status_has_no_stream_and_polls_trickle(start, client):
    srv = start("trickle-status")
    sub = submit(client, srv)
    assert client.get(sub["status_url"] + "/stream", headers=AUTH).status_code == 404
    assert first_byte_times_out(client, sub["status_url"])


def test_trickle_result_and_trickle_image(start, client):
    srv = start("trickle-result")
    sub = submit(client, srv)
    completed(srv, sub["request_id"])
    assert first_byte_times_out(client, sub["response_url"])
    srv = start("trickle-image")
    sub = submit(client, srv)
    completed(srv, sub["request_id"])
    assert first_byte_times_out(client, result(client, sub)["url"])


def test_endless_sse_line(start, client):
    srv = start("endless-sse-line")
    sub = submit(client, srv)
    with client.stream("GET", sub["status_url"] + "/stream", headers=AUTH) as r:
        assert r.headers["content-type"] == "text/event-stream"
        got = b""
        for chunk in r.iter_bytes():
            got += chunk
            if len(got) > 1 << 20:
                break
    assert got.startswith(b"data: ") and b"\n" not in got
    completed(srv, sub["request_id"])
    assert client.get(sub["status_url"], headers=AUTH).json()["status"] == "COMPLETED"


@pytest.mark.parametrize(("scenario", "part"), [("huge-status", "status"), ("huge-result", "")])
def test_huge_bodies_come_without_a_length(start, client, scenario, part):
    srv = start(scenario)
    sub = submit(client, srv)
    completed(srv, sub["request_id"])
    url = sub["status_url"] if part else sub["response_url"]
    with client.stream("GET", url, headers=AUTH) as r:
        assert "content-length" not in r.headers
        got = b""
        for chunk in r.iter_bytes():
            got += chunk
            if len(got) > 1 << 20:
                break
    assert got.startswith(b'{"') and b'"pad": "xxxx' in got


def image_of(c, srv, scenario: str) -> tuple[bytes, dict]:
    sub = submit(c, srv)
    completed(srv, sub["request_id"])
    image = result(c, sub)
    return c.get(image["url"]).content, image


def test_size_lie_claims_the_same_shape_at_37_times_the_size(start, client):
    data, image = image_of(client, start("size-lie"), "size-lie")
    assert (image["width"], image["height"]) == (112, 80)
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (4200, 3000) and len(data) < 200_000


def test_png_bomb_has_the_right_size_and_far_too_much_data(start, client):
    data, image = image_of(client, start("png-bomb"), "png-bomb")
    assert int.from_bytes(data[16:20], "big") == image["width"] == 112
    idat = data[data.index(b"IDAT") + 4 : -16]
    inflater = zlib.decompressobj()
    assert len(inflater.decompress(idat, 10 << 20)) == 10 << 20  # and more behind it
    assert (112 * 3 + 1) * 80 < 10 << 20


def test_truncated_image(start, client):
    data, image = image_of(client, start("truncated-image"), "truncated-image")
    assert data.startswith(b"\x89PNG") and b"IEND" not in data
    assert image["file_size"] == len(data)


def test_bad_result_url_and_redirect(start, client):
    srv = start("bad-result-url")
    sub = submit(client, srv)
    completed(srv, sub["request_id"])
    assert result(client, sub)["url"] == hostile.BAD_URL
    srv = start("redirect-result")
    sub = submit(client, srv)
    completed(srv, sub["request_id"])
    url = result(client, sub)["url"]
    moved = client.get(url)
    assert moved.status_code == 302 and moved.headers["location"] == url + "?moved=1"
    assert client.get(moved.headers["location"]).content.startswith(b"\x89PNG")


def test_echo_key_and_hostile_error_carry_the_key_and_escapes(start, client):
    srv = start("echo-key")
    sub = submit(client, srv)
    completed(srv, sub["request_id"])
    logs = client.get(sub["status_url"], params={"logs": 1}, headers=AUTH).json()["logs"]
    text = " ".join(entry["message"] for entry in logs)
    assert KEY in text and "\x1b]0;" in text and "\nin.png -> /tmp/elsewhere.png" in text
    srv = start("hostile-error")
    sub = submit(client, srv)
    completed(srv, sub["request_id"])
    r = client.get(sub["response_url"], headers=AUTH)
    assert r.status_code == 500 and KEY in r.json()["detail"] and "\x1b" in r.json()["detail"]


def test_key_in_url(start, client):
    srv = start("key-in-url")
    sub = submit(client, srv)
    for name in ("status_url", "response_url", "cancel_url"):
        assert sub[name].endswith(f"?key={KEY}")
    assert client.get(sub["status_url"], headers=AUTH).status_code in (200, 202)


def test_proxy_504_accepts_the_first_submit_and_loses_the_answer(start, client):
    srv = start("proxy-504")
    r = client.post(srv.base_url + APP + "/outpaint", json={"image_url": data_uri()}, headers=AUTH)
    assert r.status_code == 504 and "x-fal-request-id" not in r.headers
    assert "nginx" not in r.text and len(srv.submits) == 1  # accepted: billed
    assert submit(client, srv)["request_id"] == srv.submits[1]


def test_mode_not_in_schema(start, client):
    srv = start("mode-not-in-schema")
    with_mode = submit(client, srv, mode="high")
    without = submit(client, srv)
    completed(srv, with_mode["request_id"])
    completed(srv, without["request_id"])
    r = client.get(with_mode["response_url"], headers=AUTH)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "mode"]
    assert client.get(without["response_url"], headers=AUTH).status_code == 200


def test_forged_images_cost_no_pixels():
    png = hostile.black_png(12000, 9600)
    assert len(png) < 400_000
    # A whole deflate stream of black rows (a filter byte and 12000 RGB pixels each), inflated
    # a slice at a time: checking it costs no 345 MB either.
    inflate, rest, size = zlib.decompressobj(), png[png.index(b"IDAT") + 4 : -16], 0
    while rest:
        piece = inflate.decompress(rest, 1 << 24)
        assert piece.count(0) == len(piece)
        size += len(piece)
        rest = inflate.unconsumed_tail
    assert inflate.eof and size == 9600 * (1 + 12000 * 3)
    assert json.loads(json.dumps(hostile.error_detail("k")))  # plain text, JSON-safe
