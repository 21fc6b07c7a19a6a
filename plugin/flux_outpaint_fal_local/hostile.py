"""What the local server sends in its hostile scenarios: bodies that trickle, never end, lie
about their size or carry escapes and the key (see the table in ``scenarios``).

The writers answer on a ``BaseHTTPRequestHandler`` and return when the answer is done, the
client has gone (a write fails) or the server stops, so a client that gives up frees the
thread at its next byte.  Forged images are built without holding their pixels: an image of
zeros is a run of identical deflate blocks, so a 12000×9600 PNG costs a few milliseconds and
a few hundred kilobytes to make.
"""

from __future__ import annotations

import functools
import json
import struct
import threading
import zlib
from io import BufferedIOBase
from typing import Protocol

from flux_outpaint.pngcodec import SIGNATURE

# One byte of a trickled body per this many seconds: a client whose read timeout restarts
# with every byte never times out.
TRICKLE_INTERVAL_S = 1.0
ENDLESS_CHUNK = 64 * 1024
HUGE_STATUS_BYTES = 100 * 1024 * 1024
HUGE_RESULT_BYTES = 400 * 1024 * 1024
# size-lie: the header claims this many times the requested width and height (the same
# shape, so only the size is wrong: 320×256 becomes 12000×9600).
SIZE_LIE_FACTOR = 37.5
# png-bomb: the requested size in the header, this much image data behind it.
BOMB_BYTES = 256 * 1024 * 1024
# A URL no parser accepts (an IPv6 literal that never closes).
BAD_URL = "https://[::1"

_ZERO_BLOCK = 1 << 20


class Exchange(Protocol):
    """What the writers need of ``routes.Handler``: the request handler's reply side and the
    exchange's record (status, logged once)."""

    wfile: BufferedIOBase
    close_connection: bool
    _status: int | None
    _rid: str | None

    def send_response(self, code: int, message: str | None = None) -> None: ...
    def send_header(self, keyword: str, value: str) -> None: ...
    def end_headers(self) -> None: ...
    def _record(self) -> None: ...


def trickle(
    handler: Exchange, code: int, body: bytes, ctype: str, stopping: threading.Event
) -> None:
    """Honest headers, then the body one byte per TRICKLE_INTERVAL_S."""
    _head(handler, code, ctype, len(body))
    for i in range(len(body)):
        if stopping.wait(TRICKLE_INTERVAL_S):
            return
        handler.wfile.write(body[i : i + 1])
        handler.wfile.flush()


def huge_json(
    handler: Exchange, code: int, size: int, stopping: threading.Event, **fields: object
) -> None:
    """A JSON object of ``size`` bytes (``fields`` plus padding), with no Content-Length: only
    a client that counts what it reads can stop it."""
    handler.close_connection = True
    _head(handler, code, "application/json", None)
    opening = "{" + "".join(f"{json.dumps(k)}: {json.dumps(v)}, " for k, v in fields.items())
    start = (opening + '"pad": "').encode()
    handler.wfile.write(start)
    sent, chunk = len(start), b"x" * ENDLESS_CHUNK
    while sent < size - 2 and not stopping.is_set():
        piece = chunk[: size - 2 - sent]
        handler.wfile.write(piece)
        sent += len(piece)
    handler.wfile.write(b'"}')


def endless_sse_line(handler: Exchange, stopping: threading.Event) -> None:
    """An event stream whose first ``data:`` line never ends."""
    handler.close_connection = True
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Cache-Control", "no-cache")
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler._status = 200
    handler._record()
    handler.wfile.write(b'data: {"status": "IN_PROGRESS", "logs": [], "pad": "')
    chunk = b"x" * ENDLESS_CHUNK
    while not stopping.is_set():
        handler.wfile.write(chunk)
        handler.wfile.flush()


def redirect(handler: Exchange, location: str) -> None:
    handler.send_response(302)
    handler.send_header("Location", location)
    handler.send_header("Content-Length", "0")
    handler.end_headers()
    handler._status = 302
    handler._record()


def _head(handler: Exchange, code: int, ctype: str, length: int | None) -> None:
    handler.send_response(code)
    handler.send_header("Content-Type", ctype)
    if length is not None:
        handler.send_header("Content-Length", str(length))
    else:
        handler.send_header("Connection", "close")
    if handler._rid:
        handler.send_header("x-fal-request-id", handler._rid)
    handler.end_headers()
    handler._status = code
    handler._record()  # logged before the body: a trickle may never finish


# -- text that must never reach a screen as sent -------------------------------------------


def log_line(key: str) -> str:
    """A status log line that echoes the key, retitles a terminal, clears it and forges an
    output line of its own."""
    return (
        f"auth Key {key}\x1b]0;owned\x07\x1b[2J\r\n"
        f"in.png -> /tmp/elsewhere.png\n\x1b[31mkey={key}\x1b[0m"
    )


def error_detail(key: str) -> str:
    return f"Runner failed\x1b[31m for Key {key}\x1b]0;owned\x07\nin.png -> /tmp/elsewhere.png"


# -- forged images -------------------------------------------------------------------------


def zeros_zlib(n: int) -> bytes:
    """A zlib stream of ``n`` zero bytes, from one compressed block used again and again (a
    full flush makes each block independent of what came before)."""
    block = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = block.compress(bytes(_ZERO_BLOCK)) + block.flush(zlib.Z_FULL_FLUSH)
    full, rest = divmod(n, _ZERO_BLOCK)
    parts = [b"\x78\xda", segment * full]
    if rest:
        tail = zlib.compressobj(9, zlib.DEFLATED, -15)
        parts.append(tail.compress(bytes(rest)) + tail.flush(zlib.Z_FULL_FLUSH))
    parts.append(zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH))
    # Adler-32 of zeros: the byte sum stays 1, the running sum counts the bytes.
    parts.append(struct.pack(">I", ((n % 65521) << 16) | 1))
    return b"".join(parts)


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def black_png(width: int, height: int, data_bytes: int | None = None) -> bytes:
    """A black RGB PNG of ``width``×``height``; ``data_bytes`` of image data instead of the
    size's own (a bomb when larger)."""
    n = (width * 3 + 1) * height if data_bytes is None else data_bytes
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zeros_zlib(n)) + _chunk(b"IEND", b"")
    )


@functools.lru_cache(maxsize=8)
def size_lie_png(width: int, height: int) -> bytes:
    return black_png(round(width * SIZE_LIE_FACTOR), round(height * SIZE_LIE_FACTOR))


@functools.lru_cache(maxsize=8)
def bomb_png(width: int, height: int) -> bytes:
    return black_png(width, height, BOMB_BYTES)


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]
