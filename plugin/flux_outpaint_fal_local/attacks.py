"""The second round of hostile answers: compressed bombs, a decode-cost bomb, a forged request
id, the key in disguise.  The scenarios that send them are registered at the end; the routes
and the backend ask ``active(name)`` and take what to send from here.

What this does not model: a bomb's wire bytes arrive at loopback speed (a real attacker's
would trickle too; the first round's trickle scenarios cover that), and the decode-cost bomb
repeats one scan of an encoder's own file (an attacker would search for the cheapest scan a
decoder still walks every block for; the cost per scan here is already about 5 ms at 2 MP).
"""

from __future__ import annotations

import base64
import functools
import gzip
import io
import re
import struct
import zlib

from .scenarios import hostile

# Nested gzip: this many zero bytes inside two layers of gzip, about 2 KB on the wire.
GZIP_BOMB_BYTES = 1024 * 1024 * 1024
NESTED_CODING = "gzip, gzip"
# Scans of the decode-cost bomb: each a full pass over the coefficients for a decoder.
BOMB_SCANS = 150_000
# The forged request id header: a command for a person to paste, and long.
FORGED_ID = "$(touch /tmp/flux-outpaint-owned)" + "x" * 20_000

_ZERO_BLOCK = 1 << 20


@functools.lru_cache(maxsize=1)
def nested_gzip_bomb(size: int = GZIP_BOMB_BYTES) -> bytes:
    """``size`` zero bytes in gzip, gzipped again (the inner layer is all repeats)."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = deflate.compress(bytes(_ZERO_BLOCK)) + deflate.flush(zlib.Z_FULL_FLUSH)
    full, rest = divmod(size, _ZERO_BLOCK)
    crc, zeros = 0, bytes(_ZERO_BLOCK)
    for _ in range(full):
        crc = zlib.crc32(zeros, crc)
    crc = zlib.crc32(bytes(rest), crc)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15)
    inner = b"".join(
        [
            b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff",
            segment * full,
            tail.compress(bytes(rest)) + tail.flush(zlib.Z_FINISH),
            struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF),
        ]
    )
    return gzip.compress(inner, 9)


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, 6)


_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def _segments(data: bytes) -> list[tuple[int, int, int]]:
    pos, found = 2, []
    while pos < len(data):
        marker = data[pos + 1]
        if marker == 0xD9:
            found.append((marker, pos, pos + 2))
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        end = pos + 2 + length
        if marker == 0xDA:
            hit = _NEXT_MARKER.search(data, end)
            end = hit.start() if hit else len(data)
        found.append((marker, pos, end))
        pos = end
    return found


@functools.lru_cache(maxsize=4)
def scan_bomb_jpeg(width: int, height: int, scans: int = BOMB_SCANS) -> bytes:
    """A valid progressive JPEG of ``width``×``height`` whose last scan (with its Huffman
    tables) is repeated until the file has ``scans`` scans."""
    from PIL import Image

    image = Image.new("RGB", (width, height), (118, 128, 138))  # flat: each scan ~40 bytes
    out = io.BytesIO()
    image.save(out, "JPEG", progressive=True, quality=85)
    data = out.getvalue()
    segments = _segments(data)
    last = max(i for i, (m, _, _) in enumerate(segments) if m == 0xDA)
    first = last
    while segments[first - 1][0] == 0xC4:
        first -= 1
    piece = data[segments[first][1] : segments[last][2]]
    have = sum(1 for m, _, _ in segments if m == 0xDA)
    eoi = segments[-1][1]
    return data[:eoi] + piece * max(0, scans - have) + data[eoi:]


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def with_key_in_text(png: bytes, key: str) -> bytes:
    """``png`` with the key in a tEXt, a zTXt and an iTXt chunk after its header."""
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        return png
    notes = (
        _chunk(b"tEXt", b"Comment\x00Key " + key.encode())
        + _chunk(b"zTXt", b"Secret\x00\x00" + zlib.compress(key.encode()))
        + _chunk(b"iTXt", b"Auth\x00\x00\x00en\x00\x00" + key.encode())
    )
    return png[:33] + notes + png[33:]


def disguised_logs(key: str) -> list[str]:
    """Status log lines that carry the key in disguise: cut in two across lines, in base64,
    upper-case, reversed, spaced out."""
    cut = len(key) // 2
    return [
        f"connecting with {key[:cut]}",
        f"{key[cut:]} accepted",
        "token " + base64.b64encode(f"Key {key}".encode()).decode(),
        f"KEY={key.upper()}",
        f"reversed {key[::-1]}",
        "spaced " + " ".join(key),
    ]


for _name, _what, _client in (
    (
        "gzip-bomb-submit",
        "answers the submit 500 with a body in `gzip, gzip` inflating to 1 GiB",
        "read no more than its cap; one line, nothing submitted",
    ),
    (
        "gzip-bomb-status",
        "answers every status poll and the stream in `gzip, gzip` (1 GiB)",
        "refuse the coding unread; name the request",
    ),
    (
        "gzip-bomb-result",
        "answers the result in `gzip, gzip` (1 GiB)",
        "refuse the coding unread; name the request",
    ),
    (
        "gzip-bomb-image",
        "sends the image in `gzip, gzip` (1 GiB)",
        "refuse the coding unread; name the request",
    ),
):
    hostile(_name, "every job", server=_what, client=_client)
hostile(
    "gzip-result",
    "every job",
    server="sends the result JSON and the image in one honest gzip layer",
    client="undo it inside the byte cap; succeed",
)
hostile(
    "scan-bomb",
    "every job",
    server=f"returns a valid progressive JPEG of the requested size with {BOMB_SCANS} scans",
    client="count the scans before decoding; refuse it",
)
hostile(
    "forged-request-id",
    "every job",
    server="tags every answer with x-fal-request-id `$(touch …)` + 20 000 characters; the "
    "result stays busy (429)",
    client="name the real request (from the submit answer) and never the header",
)
hostile(
    "key-in-disguise",
    "every job",
    server="logs the key cut across two lines, in base64, upper-case, reversed and spaced "
    "out; the image carries it in tEXt, zTXt and iTXt chunks",
    client="show and keep none of it; the cached result without text chunks",
)
