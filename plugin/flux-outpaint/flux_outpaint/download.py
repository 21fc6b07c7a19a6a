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
* a redirect is never followed: the image must come from the URL fal gave;
* a body is read as it came over the wire (``body_chunks``): the client asks for
  ``identity``, one layer of gzip or deflate is undone here in bounded steps inside the same
  byte cap (so a few kilobytes of nested compression cannot become gigabytes before the cap
  sees a byte), and any other ``Content-Encoding`` (brotli, zstd, ``gzip, gzip``) is refused
  as a protocol error.

Every JSON answer the client reads (submit, status, result, cancel, storage) is capped at
``MAX_JSON_BYTES`` the same way (``read_capped``); error bodies are cut at
``MAX_ERROR_BODY_BYTES``.  A URL shown in a message is cleaned first (``errors.clean``).

The API key is never sent to the image host: the caller passes headers only for its own
server's origin.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from .errors import OutpaintError, ResultError, clean
from .i18n import _
from .pngcodec import SIGNATURE as PNG_SIGNATURE

__all__ = [
    "ALLOWED_CONTENT_TYPES",
    "MAX_ERROR_BODY_BYTES",
    "MAX_JSON_BYTES",
    "MAX_RESULT_BYTES",
    "REQUEST_HEADERS",
    "ImageRef",
    "body_chunks",
    "check_url",
    "content_coding",
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

# Sent with every request: httpx would otherwise ask for gzip (and brotli or zstd when those
# packages are installed) and undo them before any cap could count a byte.
REQUEST_HEADERS = {"Accept-Encoding": "identity"}
# The codings undone here, one layer at most: zlib's window bits (32+: gzip or zlib header).
_CODINGS = {
    "gzip": 32 + zlib.MAX_WBITS,
    "x-gzip": 32 + zlib.MAX_WBITS,
    "deflate": 32 + zlib.MAX_WBITS,
}
# Decoded output per step: a bomb never holds more than this beyond what the cap allows.
_INFLATE_STEP = 1 << 16

_JPEG_MAGIC = b"\xff\xd8\xff"


@dataclass(frozen=True)
class ImageRef:
    url: str
    content_type: str | None = None  # what the result JSON claims, if anything


def result_image(result_json: object) -> ImageRef:
    """The first image of an outpaint result ``{"images": [{"url": ...}, ...]}``."""
    images = result_json.get("images") if isinstance(result_json, Mapping) else None
    if not isinstance(images, list) or not images:
        raise ResultError(_("fal returned a result without an image"))
    first = images[0]
    url = first.get("url") if isinstance(first, Mapping) else None
    if not isinstance(url, str) or not url:
        raise ResultError(_("fal returned a result image without a URL"))
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
        _port = parts.port  # a malformed port raises here, not later in the HTTP client
    except ValueError:
        raise ResultError(
            _("fal returned a malformed result URL ({url})").format(url=clean(url)[:120])
        ) from None
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise ResultError(
            _("fal returned a malformed result URL ({url})").format(url=clean(url)[:120])
        )
    allowed = scheme == "https" or (scheme == "http" and origin(url) == origin(base_url))
    if "@" in parts.netloc:  # credentials in a URL would be sent to its host: never
        raise ResultError(_("Refusing to download the result from a URL with a user name in it"))
    if not allowed or not host:
        shown = url if scheme in ("http", "https") else f"{scheme or 'a schemeless'} URL"
        raise ResultError(
            _(
                "Refusing to download the result from {url}: "
                "only https, data: or the configured server are allowed"
            ).format(url=clean(shown)[:120])
        )
    return "http"


def decode_data_uri(uri: str, max_bytes: int | None = None) -> tuple[bytes, str]:
    """Bytes and declared media type of a base64 ``data:`` URI, size-checked before decoding."""
    max_bytes = MAX_RESULT_BYTES if max_bytes is None else max_bytes
    header, comma, payload = uri.partition(",")
    if not comma or not header.lower().startswith("data:"):
        raise ResultError(_("The result image is a malformed data URI"))
    params = [p.strip() for p in header[5:].split(";")]
    if "base64" not in (p.lower() for p in params[1:]):
        raise ResultError(_("The result image data URI is not base64-encoded"))
    payload = "".join(payload.split())
    # Four base64 characters carry three bytes: refuse before allocating the decoded copy.
    if len(payload) // 4 * 3 > max_bytes:
        raise ResultError(
            _("The result image is larger than {size}").format(size=_size_text(max_bytes))
        )
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ResultError(_("The result image data URI is not valid base64")) from None
    return data, params[0].lower()


def content_coding(response: httpx.Response) -> str | None:
    """The one content coding this module undoes (None: the body is as sent); ValueError
    naming the header (cleaned, capped) for anything else."""
    raw = response.headers.get("content-encoding", "")
    codings = [c.strip().lower() for c in raw.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return None
    if len(codings) == 1 and codings[0] in _CODINGS:
        return str(codings[0])
    raise ValueError(clean(raw, limit=40) or "?")


def body_chunks(response: httpx.Response, coding: str | None) -> Iterator[bytes]:
    """The body as decoded bytes, from the raw stream: ``coding`` (from ``content_coding``)
    undone in steps of at most ``_INFLATE_STEP`` bytes, so the consumer's count stops a bomb
    after one step too many.  zlib.error when the compressed data is corrupt."""
    try:  # a body built in memory (a test's transport) was read, and decoded, by httpx
        whole = response.content
    except httpx.ResponseNotRead:
        pass
    else:
        yield whole
        return
    if coding is None:
        yield from response.iter_raw()
        return
    inflater = zlib.decompressobj(_CODINGS[coding])
    for raw in response.iter_raw():
        pending: bytes = raw
        while pending and not inflater.eof:
            out = inflater.decompress(pending, _INFLATE_STEP)
            pending = inflater.unconsumed_tail
            if out:
                yield out
        if inflater.eof:
            return  # what follows the compressed stream is not part of the body
    while not inflater.eof:  # what the last input left inside the inflater
        out = inflater.decompress(b"", _INFLATE_STEP)
        if not out:
            break
        yield out


def read_capped(
    response: httpx.Response,
    max_bytes: int | None = None,
    *,
    truncate: bool = False,
    what: str = "The result image",
    error: type[OutpaintError] = ResultError,
) -> bytes:
    """Read a streamed body, refusing (or, with ``truncate``, cutting) past ``max_bytes``.

    The refusal is ``error("<what> is larger than N MiB …")``; a body in a coding this module
    does not undo is refused the same way (with ``truncate``: read as empty, it was only
    wanted for a message).  The cap counts decoded bytes.
    """
    max_bytes = MAX_RESULT_BYTES if max_bytes is None else max_bytes
    too_big = f"{what} is larger than {_size_text(max_bytes)}; it was not read"
    try:
        coding = content_coding(response)
    except ValueError as exc:
        if truncate:
            return b""
        raise error(
            f"{what} came with a content encoding that is not accepted ({exc}); it was not read"
        ) from None
    length = response.headers.get("content-length", "")
    if not truncate and length.isdigit() and int(length) > max_bytes:
        raise error(too_big)
    parts: list[bytes] = []
    total = 0
    try:
        for chunk in body_chunks(response, coding):
            total += len(chunk)
            if total > max_bytes:
                if truncate:
                    parts.append(chunk[: max_bytes - (total - len(chunk))])
                    break
                raise error(too_big)
            parts.append(chunk)
    except zlib.error:
        if truncate:
            return b"".join(parts)
        raise error(f"{what} could not be decompressed; it was not read") from None
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
            raise ResultError(_("The result is {type}, not a PNG or JPEG image").format(type=claim))
    actual = sniff(data)
    if actual is None:
        raise ResultError(_("The result is not a PNG or JPEG image"))
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
                _(
                    "The result host answered with a redirect (HTTP {status}); redirect refused"
                ).format(status=response.status_code)
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
        raise ResultError(
            _("The result image is larger than {size}").format(size=_size_text(max_bytes))
        )
    return data, image_type(data, response.headers.get("content-type"), ref.content_type)
