"""Result download policy: allowed URLs, size cap before decoding, PNG/JPEG only."""

from __future__ import annotations

import base64

import httpx
import pytest
from fakes import FakeClock, FakeFal
from flux_outpaint import download
from flux_outpaint.errors import ResultError, ResultUnavailableError
from flux_outpaint.queue_client import FalQueueClient

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
BASE = "https://queue.fal.run"
LOCAL = "http://127.0.0.1:8765"
KEY = "secret-key-for-download-tests"


def result(url: str, **extra) -> dict:
    return {"images": [{"url": url, **extra}]}


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def client_for(responder, base=BASE) -> tuple[FalQueueClient, FakeFal]:
    """A client whose downloads (from fal's file host or anywhere else) ``responder`` answers."""
    fal = FakeFal(file=[responder], other=[responder])
    clock = FakeClock()
    client = FalQueueClient(
        base,
        KEY,
        transport=httpx.MockTransport(fal),
        sleep=clock.sleep,
        clock=clock,
        rand=lambda: 0.5,
    )
    return client, fal


def sent(fal: FakeFal) -> list[httpx.Request]:
    return [request for _, request in fal.requests]


# -- URL rule ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "base", "kind"),
    [
        ("https://v3b.fal.media/files/x/out.png", BASE, "http"),
        ("data:image/png;base64,AAAA", BASE, "data"),
        (f"{LOCAL}/files/out.png", LOCAL, "http"),
        ("http://localhost:8765/files/out.png", "http://localhost:8765/x", "http"),
    ],
)
def test_allowed_urls(url, base, kind):
    assert download.check_url(url, base) == kind


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("http://v3b.fal.media/files/out.png", BASE),  # plain http to a CDN
        ("http://127.0.0.1:9999/out.png", LOCAL),  # another local port
        ("file:///etc/passwd", BASE),
        ("ftp://example.com/out.png", BASE),
        ("//example.com/out.png", BASE),
        ("https:///nohost.png", BASE),
        ("javascript:alert(1)", BASE),
    ],
)
def test_refused_urls(url, base):
    with pytest.raises(ResultError, match="Refusing"):
        download.check_url(url, base)


# -- data URIs -----------------------------------------------------------------------------


def test_data_uri_decodes_and_declares_its_type():
    assert download.decode_data_uri(data_uri(PNG)) == (PNG, "image/png")
    wrapped = "data:image/jpeg;base64," + "\n".join(
        base64.b64encode(JPEG).decode()[i : i + 8] for i in range(0, 92, 8)
    )
    assert download.decode_data_uri(wrapped) == (JPEG, "image/jpeg")


def test_data_uri_over_the_cap_is_refused_before_decoding(monkeypatch):
    decoded = []
    monkeypatch.setattr(download.base64, "b64decode", lambda *a, **k: decoded.append(1))
    with pytest.raises(ResultError, match="larger than"):
        download.decode_data_uri("data:image/png;base64," + "A" * 4096, max_bytes=1024)
    assert decoded == []


@pytest.mark.parametrize(
    "uri",
    [
        "data:image/png,rawbytes",
        "data:image/png;base64,@@@@",
        "data:image/png;base64",
        "notdata:image/png;base64,AAAA",
    ],
)
def test_malformed_data_uris(uri):
    with pytest.raises(ResultError):
        download.decode_data_uri(uri)


# -- type checks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "declared", "expected"),
    [
        (PNG, ("image/png",), "image/png"),
        (JPEG, ("image/jpeg; charset=binary",), "image/jpeg"),
        (PNG, ("application/octet-stream", None), "image/png"),
        (JPEG, ("image/png",), "image/jpeg"),  # the bytes decide which of the two it is
    ],
)
def test_image_type_accepts(data, declared, expected):
    assert download.image_type(data, *declared) == expected


@pytest.mark.parametrize(
    ("data", "declared"),
    [
        (b"GIF89a" + b"\x00" * 10, ("image/gif",)),
        (b"<html>oops</html>", ("text/html",)),
        (b"<html>oops</html>", ("image/png",)),  # claims PNG, is not
        (PNG, ("image/webp",)),  # a declared non-PNG/JPEG type is refused outright
        (b"", ()),
    ],
)
def test_image_type_refuses(data, declared):
    with pytest.raises(ResultError):
        download.image_type(data, *declared)


@pytest.mark.parametrize("bad", [{}, {"images": []}, {"images": [{}]}, {"images": "x"}, [1]])
def test_result_without_an_image(bad):
    with pytest.raises(ResultError):
        download.result_image(bad)


# -- fetching ------------------------------------------------------------------------------


def test_https_download_without_the_key():
    client, rec = client_for(
        lambda r: httpx.Response(200, headers={"content-type": "image/png"}, content=PNG)
    )
    assert client.download(result("https://v3b.fal.media/files/out.png")) == (PNG, "image/png")
    (req,) = sent(rec)
    assert "authorization" not in req.headers  # the key never goes to an image host


def test_local_server_download_carries_the_key():
    client, rec = client_for(
        lambda r: httpx.Response(200, headers={"content-type": "image/jpeg"}, content=JPEG),
        base=LOCAL,
    )
    assert client.download(result(f"{LOCAL}/files/out.jpg")) == (JPEG, "image/jpeg")
    assert sent(rec)[0].headers["authorization"] == f"Key {KEY}"


def test_data_uri_result_needs_no_request():
    client, rec = client_for(lambda r: httpx.Response(500))
    assert client.download(result(data_uri(JPEG, "image/jpeg"))) == (JPEG, "image/jpeg")
    assert sent(rec) == []


def test_content_length_over_the_cap_is_refused_before_reading(monkeypatch):
    monkeypatch.setattr(download, "MAX_RESULT_BYTES", 1000)
    pulled = []

    def body():
        pulled.append(1)
        yield PNG

    client, _ = client_for(
        lambda r: httpx.Response(
            200, headers={"content-type": "image/png", "content-length": "5000"}, content=body()
        )
    )
    with pytest.raises(ResultError, match="larger than"):
        client.download(result("https://cdn.example.com/a.png"))
    assert pulled == []


def test_streamed_body_over_the_cap_is_cut_off(monkeypatch):
    monkeypatch.setattr(download, "MAX_RESULT_BYTES", 1000)
    sent = []

    def body():  # no Content-Length: only the running count can stop it
        for _ in range(100):
            sent.append(1)
            yield PNG

    client, _ = client_for(
        lambda r: httpx.Response(200, headers={"content-type": "image/png"}, content=body())
    )
    with pytest.raises(ResultError, match="larger than"):
        client.download(result("https://cdn.example.com/a.png"))
    assert len(sent) < 100


def test_wrong_content_type_header_is_refused():
    client, _ = client_for(
        lambda r: httpx.Response(
            200, headers={"content-type": "text/html"}, content=b"<html></html>"
        )
    )
    with pytest.raises(ResultError, match="text/html"):
        client.download(result("https://cdn.example.com/a.png"))


def test_transient_cdn_failures_are_retried_then_succeed():
    answers = iter([httpx.Response(503), httpx.Response(502)])

    def respond(request):
        try:
            return next(answers)
        except StopIteration:
            return httpx.Response(200, headers={"content-type": "image/png"}, content=PNG)

    client, rec = client_for(respond)
    assert client.download(result("https://cdn.example.com/a.png"))[0] == PNG
    assert len(sent(rec)) == 3


def test_expired_result_image_is_reported_not_retried():
    client, rec = client_for(lambda r: httpx.Response(404, text="gone"))
    with pytest.raises(ResultUnavailableError):
        client.download(result("https://cdn.example.com/a.png"))
    assert len(sent(rec)) == 1


def test_refused_url_is_never_requested():
    client, rec = client_for(lambda r: httpx.Response(200, content=PNG))
    with pytest.raises(ResultError):
        client.download(result("http://cdn.example.com/a.png"))
    assert sent(rec) == []
