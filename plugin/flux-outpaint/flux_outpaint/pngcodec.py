"""A small standard-library PNG encoder and decoder (8-bit, non-interlaced).

The core stays free of Pillow and GdkPixbuf; this codec is the fallback encoder where no
native one is injected, lets tests build exact PNGs without Pillow, and reads results that
other decoders cannot be trusted with.  Encoding uses the "up" filter on every row: the
rows are built in C (bytes arithmetic via ``int.from_bytes``) and compress nearly as well
as adaptive filtering on photographs' smooth gradients.  Decoding supports every filter;
pure-Python Paeth/average rows are slow, which is acceptable for its uses (tests, small
images).

Decoding is bounded by the header: an image over ``max_pixels`` is refused before anything
is inflated, and the image data is inflated to exactly the byte count the header implies and
no further, so a decompression bomb stops at its first byte too many.
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import BinaryIO

from .errors import ResultError
from .i18n import _

__all__ = ["MAX_DECODE_PIXELS", "SIGNATURE", "decode_png", "encode_png", "has_chunk", "png_size"]

# Pure-Python decoding of more than this would take minutes; outpaint results are ≤ 4 MP.
MAX_DECODE_PIXELS = 16 * 1024 * 1024
_INFLATE_STEP = 1 << 16

SIGNATURE = b"\x89PNG\r\n\x1a\n"  # the one definition: imageinfo, download, the CLI use it
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type → samples per pixel
_COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels → colour type


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _lanes(data: bytes, high: int) -> int:
    """``data`` as one big integer with each byte in its own 16-bit lane, ``high`` above it."""
    wide = bytearray(2 * len(data))
    wide[1::2] = data
    if high:
        wide[0::2] = bytes([high]) * len(data)
    return int.from_bytes(wide, "big")


def _minus(row: bytes, previous: bytes) -> bytes:
    """Byte-wise ``(row − previous) mod 256`` computed in C: each lane holds 0x100 + a − b,
    which never borrows from its neighbour, so the low byte of every lane is the answer."""
    n = len(row)
    diff = (_lanes(row, 1) - _lanes(previous, 0)).to_bytes(2 * n, "big")
    return diff[1::2]


def _up_filtered(pixels: bytes, stride: int, height: int) -> bytes:
    out = bytearray()
    previous = bytes(stride)
    for y in range(height):
        row = pixels[y * stride : (y + 1) * stride]
        out += b"\x02"
        out += _minus(row, previous)
        previous = row
    return bytes(out)


def encode_png(pixels: bytes, width: int, height: int, channels: int = 4, level: int = 6) -> bytes:
    """Encode 8-bit gray (1), gray+alpha (2), RGB (3) or RGBA (4) pixels."""
    if channels not in _COLOUR_TYPE:
        raise ValueError(f"unsupported channel count {channels}")
    stride = width * channels
    if len(pixels) != stride * height:
        raise ValueError(f"expected {stride * height} bytes, got {len(pixels)}")
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOUR_TYPE[channels], 0, 0, 0)
    raw = _up_filtered(bytes(pixels), stride, height)
    return (
        SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, level))
        + _chunk(b"IEND", b"")
    )


def png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 24 or data[:8] != SIGNATURE or data[12:16] != b"IHDR":
        raise ResultError(_("Not a PNG image"))
    return struct.unpack(">II", data[16:24])


def _unfilter(kind: int, row: bytearray, previous: bytes, bpp: int) -> None:
    n = len(row)
    if kind == 0:
        return
    if kind == 1:
        for i in range(bpp, n):
            row[i] = (row[i] + row[i - bpp]) & 0xFF
    elif kind == 2:
        for i in range(n):
            row[i] = (row[i] + previous[i]) & 0xFF
    elif kind == 3:
        for i in range(n):
            left = row[i - bpp] if i >= bpp else 0
            row[i] = (row[i] + ((left + previous[i]) >> 1)) & 0xFF
    elif kind == 4:
        for i in range(n):
            a = row[i - bpp] if i >= bpp else 0
            b = previous[i]
            c = previous[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            row[i] = (row[i] + pred) & 0xFF
    else:
        raise ResultError(_("Corrupt PNG: unknown row filter {kind}").format(kind=kind))


def _inflate_exactly(parts: list[bytes], size: int) -> bytes:
    """The first ``size`` inflated bytes; ResultError if there are fewer or more."""
    inflater = zlib.decompressobj()
    out = bytearray()
    try:
        for part in [*parts, b""]:
            pending: bytes = part
            while True:
                piece = inflater.decompress(pending, _INFLATE_STEP)
                out += piece
                if len(out) > size:
                    raise ResultError(_("Corrupt PNG: more image data than its size (a bomb)"))
                pending = inflater.unconsumed_tail
                if not pending and not piece:
                    break
    except zlib.error as exc:
        raise ResultError(_("Corrupt PNG: {reason}").format(reason=exc)) from None
    if len(out) < size:
        raise ResultError(_("Corrupt PNG: truncated image data"))
    return bytes(out)


def decode_png(data: bytes, *, max_pixels: int = MAX_DECODE_PIXELS) -> tuple[bytes, int, int, int]:
    """Decode to (pixels, width, height, channels); palette images become RGB(A)."""
    width, height = png_size(data)
    if width * height > max_pixels or width == 0 or height == 0:
        raise ResultError(
            _("Refusing to decode a {width}×{height} PNG (more than {limit} px)").format(
                width=width, height=height, limit=max_pixels
            )
        )
    pos, idat, palette, trns = 8, [], None, None
    depth = colour = interlace = None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            _w, _h, depth, colour, _c, _f, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            palette = body
        elif kind == b"tRNS":
            trns = body
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if depth != 8 or interlace != 0 or colour not in _CHANNELS:
        raise ResultError(_("Unsupported PNG (only 8-bit non-interlaced images are read)"))
    channels = _CHANNELS[colour]
    stride = width * channels
    raw = _inflate_exactly(idat, (stride + 1) * height)
    out = bytearray()
    previous = bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        row = bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(raw[start], row, previous, channels)
        out += row
        previous = bytes(row)
    if colour == 3:
        if palette is None:
            raise ResultError(_("Corrupt PNG: palette missing"))
        alpha = trns or b""
        channels = 4 if alpha else 3
        lut = [
            palette[3 * i : 3 * i + 3]
            + (bytes([alpha[i] if i < len(alpha) else 255]) if alpha else b"")
            for i in range(len(palette) // 3)
        ]
        out = bytearray(b"".join(lut[i] for i in out))
    return bytes(out), width, height, channels


def has_chunk(stream: BinaryIO, kind: bytes) -> bool:
    """True if the PNG in ``stream`` (at its start) has a ``kind`` chunk before ``IEND``.

    Reads only the chunk headers, seeking over their data: a file's metadata is found without
    reading its pixels.  A stream that is no PNG, or ends early, has no such chunk.
    """
    if stream.read(8) != SIGNATURE:
        return False
    while True:
        head = stream.read(8)
        if len(head) < 8:
            return False
        found = head[4:]
        if found == kind:
            return True
        if found == b"IEND":
            return False
        stream.seek(int.from_bytes(head[:4], "big") + 4, io.SEEK_CUR)
