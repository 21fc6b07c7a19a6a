"""Result download policy: which URLs we fetch, how much we read, what we accept.

A result JSON comes from the network, so its image URL is untrusted input:

* only ``https:`` URLs, ``data:`` URIs, or URLs on the configured server's own origin (the
  local server speaks plain http on loopback) are fetched — never ``file:``, never plain http
  to some other host, never a URL with a user name or password in it;
* at most ``MAX_RESULT_BYTES`` are accepted, checked against Content-Length before reading,
  against the byte count while streaming, and against the encoded length of a data URI
  before it is decoded, so a hostile or broken server cannot make us allocate without bound;
* the bytes must be PNG or JPEG by their magic numbers, and a declared content type (header,
  data URI or the result's own ``content_type``) must not claim anything else;
* a redirect is never followed: the image must come from the URL fal gave.

Every JSON answer the client reads (submit, status, result, cancel, storage) is capped at
``MAX_JSON_BYTES`` the same way (``read_capped``); error bodies are cut at
``MAX_ERROR_BODY_BYTES``.  A URL shown in a message is cleaned first (``errors.clean``).

The API key is never sent to the image host: the caller passes headers only for its own
server's origin.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from .errors import OutpaintError, ResultError, clean
from .pngcodec import SIGNATURE as PNG_SIGNATURE

__all__ = [
    "ALLOWED_CONTENT_TYPES",
    "MAX_ERROR_BODY_BYTES",
    "MAX_JSON_BYTES",
    "MAX_RESULT_BYTES",
    "ImageRef",
    "check_url",
    "decode_data_uri",
    "fetch",
    "image_type",
    "load_result_image",
    "origin",
    "read_capped",
    "result_image",
    "sniff",
]

# The largest output fal produces is 4 MP; even an uncompressed-looking 4 MP PNG stays far
# below this.  Anything bigger is not an outpaint result.
MAX_RESULT_BYTES = 64 * 1024 * 1024
# Error bodies are read only to build a message.
MAX_ERROR_BODY_BYTES = 64 * 1024
# fal's JSON answers are a few kilobytes (a status with all its logs rarely 100 KB); a body
# beyond this is not worth holding in memory, whoever sent it.
MAX_JSON_BYTES = 4 * 1024 * 1024
ALLOWED_CONTENT_TYPES = ("image/png", "image/jpeg")
# Types that say nothing about the content: the magic bytes decide.
_UNINFORMATIVE_TYPES = ("", "application/octet-stream", "binary/octet-stream")

_JPEG_MAGIC = b"\xff\xd8\xff"


@dataclass(frozen=True)
class ImageRef:
    url: str
    content_type: str | None = None  # what the result JSON claims, if anything


def result_image(result_json: object) -> ImageRef:
    """The first image of an outpaint result ``{"images": [{"url": ...}, ...]}``."""
    images = result_json.get("images") if isinstance(result_json, Mapping) else None
    if not isinstance(images, list) or not images:
        raise ResultError("fal returned a result without an image")
    first = images[0]
    url = first.get("url") if isinstance(first, Mapping) else None
    if not isinstance(url, str) or not url:
        raise ResultError("fal returned a result image without a URL")
    declared = first.get("content_type")
    return ImageRef(url, declared if isinstance(declared, str) else None)


def origin(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def check_url(url: str, base_url: str) -> str:
    """Return how the URL is fetched ("data" or "http"); ResultError if it is not allowed."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "data":
            return "data"
        host = parts.hostname
        _ = parts.port  # a malformed port raises here, not later in the HTTP client
    except ValueError:
        raise ResultError(f"fal returned a malformed result URL ({clean(url)[:120]})") from None
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise ResultError(f"fal returned a malformed result URL ({clean(url)[:120]})")
    allowed = scheme == "https" or (scheme == "http" and origin(url) == origin(base_url))
    if "@" in parts.netloc:  # credentials in a URL would be sent to its host: never
        raise ResultError("Refusing to download the result from a URL with a user name in it")
    if not allowed or not host:
        shown = url if scheme in ("http", "https") else f"{scheme or 'a schemeless'} URL"
        raise ResultError(
            f"Refusing to download the result from {clean(shown)[:120]}: "
            "only https, data: or the configured server are allowed"
        )
    return "http"


def decode_data_uri(uri: str, max_bytes: int | None = None) -> tuple[bytes, str]:
    """Bytes and declared media type of a base64 ``data:`` URI, size-checked before decoding."""
    max_bytes = MAX_RESULT_BYTES if max_bytes is None else max_bytes
    header, comma, payload = uri.partition(",")
    if not comma or not header.lower().startswith("data:"):
        raise ResultError("The result image is a malformed data URI")
    params = [p.strip() for p in header[5:].split(";")]
    if "base64" not in (p.lower() for p in params[1:]):
        raise ResultError("The result image data URI is not base64-encoded")
    payload = "".join(payload.split())
    # Four base64 characters carry three bytes: refuse before allocating the decoded copy.
    if len(payload) // 4 * 3 > max_bytes:
        raise ResultError(f"The result image is larger than {_size_text(max_bytes)}")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ResultError("The result image data URI is not valid base64") from None
    return data, params[0].lower()


def read_capped(
    response: httpx.Response,
    max_bytes: int | None = None,
    *,
    truncate: bool = False,
    what: str = "The result image",
    error: type[OutpaintError] = ResultError,
) -> bytes:
    """Read a streamed body, refusing (or, with ``truncate``, cutting) past ``max_bytes``.

    The refusal is ``error("<what> is larger than N MiB …")``.
    """
    max_bytes = MAX_RESULT_BYTES if max_bytes is None else max_bytes
    too_big = f"{what} is larger than {_size_text(max_bytes)}; it was not read"
    length = response.headers.get("content-length", "")
    if not truncate and length.isdigit() and int(length) > max_bytes:
        raise error(too_big)
    parts: list[bytes] = []
    total = 0
    for chunk in response.iter_bytes():
        total += len(chunk)
        if total > max_bytes:
            if truncate:
                parts.append(chunk[: max_bytes - (total - len(chunk))])
                break
            raise error(too_big)
        parts.append(chunk)
    return b"".join(parts)


def _size_text(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 else f"{n // 1024} KiB"


def sniff(data: bytes) -> str | None:
    if data.startswith(PNG_SIGNATURE):
        return "image/png"
    if data.startswith(_JPEG_MAGIC):
        return "image/jpeg"
    return None


def _media_type(value: str | None) -> str:
    return (value or "").split(";")[0].strip().lower()


def image_type(data: bytes, *declared: str | None) -> str:
    """The image's content type from its magic bytes; ResultError if it or a claim is wrong."""
    for claim in map(_media_type, declared):
        if claim not in ALLOWED_CONTENT_TYPES and claim not in _UNINFORMATIVE_TYPES:
            raise ResultError(f"The result is {claim}, not a PNG or JPEG image")
    actual = sniff(data)
    if actual is None:
        raise ResultError("The result is not a PNG or JPEG image")
    return actual


def fetch(
    http: httpx.Client,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: httpx.Timeout | float | None = None,
    max_bytes: int | None = None,
) -> tuple[httpx.Response, bytes]:
    """One GET.  Returns the (closed) response and its capped body; error bodies are truncated.

    A redirect is refused: the image must come from the URL fal gave, never from wherever
    that host points next.
    """
    with http.stream("GET", url, headers=dict(headers or {}), timeout=timeout) as response:
        if 300 <= response.status_code < 400:
            raise ResultError(
                f"The result host answered with a redirect (HTTP {response.status_code}); "
                "redirect refused"
            )
        if response.status_code >= 400:
            return response, read_capped(response, MAX_ERROR_BODY_BYTES, truncate=True)
        return response, read_capped(response, max_bytes)


# Fetches one URL with the caller's retries and error mapping; returns headers and body of a
# successful response.
FetchUrl = Callable[[str], tuple[httpx.Response, bytes]]


def load_result_image(
    result_json: object,
    *,
    base_url: str,
    fetch_url: FetchUrl,
    max_bytes: int | None = None,
) -> tuple[bytes, str]:
    """The result's image bytes and content type, after every check above."""
    max_bytes = MAX_RESULT_BYTES if max_bytes is None else max_bytes
    ref = result_image(result_json)
    if check_url(ref.url, base_url) == "data":
        data, declared = decode_data_uri(ref.url, max_bytes)
        return data, image_type(data, declared, ref.content_type)
    response, data = fetch_url(ref.url)
    if len(data) > max_bytes:  # fetch_url may come from elsewhere: the cap is ours to keep
        raise ResultError(f"The result image is larger than {_size_text(max_bytes)}")
    return data, image_type(data, response.headers.get("content-type"), ref.content_type)
