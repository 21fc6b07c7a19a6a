"""Result images judged by their headers, before any pixel is decoded."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from flux_outpaint.errors import ResultError
from flux_outpaint.imageinfo import ImageInfo, check_header, check_result, read_header
from flux_outpaint.pngcodec import encode_png
from PIL import Image


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_from_raw(width: int, height: int, raw: bytes, colour: int = 2, interlace: int = 0):
    """A PNG around ``raw`` (already filtered rows), whatever its length."""
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, interlace)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def pillow(image: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kw)
    return out.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "1", "I;16"])
def test_png_headers_of_every_kind(mode):
    data = pillow(Image.new(mode, (37, 23)), "PNG")
    assert read_header(data).size == (37, 23)
    assert check_result(data, (37, 23)).content_type == "image/png"


def test_an_interlaced_png_is_measured_pass_by_pass():
    width, height = 13, 11
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2))
    raw = b""
    for x0, y0, dx, dy in (*passes, (0, 1, 1, 2)):
        w, h = len(range(x0, width, dx)), len(range(y0, height, dy))
        if w and h:
            raw += (b"\x00" + bytes(w * 3)) * h
    data = png_from_raw(width, height, raw, interlace=1)
    info = check_result(data, (width, height))
    assert info.interlaced and info.png_data_bytes() == len(raw)
    assert Image.open(io.BytesIO(data)).size == (width, height)  # a real decoder agrees


@pytest.mark.parametrize("kw", [{}, {"progressive": True}, {"quality": 95, "subsampling": 0}])
def test_jpeg_headers(kw):
    data = pillow(Image.effect_noise((41, 29), 40).convert("RGB"), "JPEG", **kw)
    info = check_result(data, (41, 29))
    assert info == ImageInfo("image/jpeg", 41, 29)


def test_a_jpeg_thumbnail_does_not_pass_for_the_image():
    thumb = pillow(Image.new("RGB", (8, 8)), "JPEG")
    app1 = b"\xff\xe1" + struct.pack(">H", len(thumb) + 2) + thumb
    main = pillow(Image.effect_noise((64, 48), 40).convert("RGB"), "JPEG")
    data = main[:2] + app1 + main[2:]
    assert read_header(data).size == (64, 48)
    check_result(data, (64, 48))
    with pytest.raises(ResultError, match="truncated"):
        check_result(data[: len(data) - 200], (64, 48))


def test_a_header_that_lies_about_the_size_is_refused_before_decoding():
    data = png_from_raw(12000, 9600, b"")  # right shape for 320×256, 37.5 times too large
    with pytest.raises(ResultError, match="12000×9600 instead of 320×256"):
        check_result(data, (320, 256))
    with pytest.raises(ResultError, match="more than any outpaint result"):
        check_result(data, None)


def test_a_decompression_bomb_stops_at_the_first_byte_too_many():
    # The header says 320×256 (245 KB of image data); the data inflates to 64 MiB.
    inflater = zlib.compressobj(9)
    block = bytes(1 << 20)
    body = b"".join(inflater.compress(block) for _ in range(64)) + inflater.flush()
    header = struct.pack(">IIBBBBB", 320, 256, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body)
    data += chunk(b"IEND", b"")
    with pytest.raises(ResultError, match="decompression bomb"):
        check_result(data, (320, 256))


@pytest.mark.parametrize("cut", [0.99, 0.5, 0.1])
def test_a_truncated_png_is_refused(cut):
    data = encode_png(bytes(range(256)) * 320, 320, 256, 1)
    with pytest.raises(ResultError, match="truncated"):
        check_result(data[: int(len(data) * cut)], (320, 256))


def test_short_image_data_and_bad_checksums_are_refused():
    short = png_from_raw(4, 4, (b"\x00" + bytes(12)) * 3)
    with pytest.raises(ResultError, match="ends early"):
        check_result(short, (4, 4))
    good = png_from_raw(4, 4, (b"\x00" + bytes(12)) * 4)
    check_result(good, (4, 4))
    flipped = bytearray(good)
    flipped[40] ^= 0xFF  # inside the IDAT
    with pytest.raises(ResultError, match="checksum"):
        check_result(bytes(flipped), (4, 4))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GIF89a" + bytes(20),
        b"\x89PNG\r\n\x1a\n" + bytes(10),
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 5, 8, 2, 0, 0, 0)),
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 5, 5, 7, 2, 0, 0, 0)),
        b"\x89PNG\r\n\x1a\n" + chunk(b"tEXt", b"x") + chunk(b"IEND", b""),
        b"\xff\xd8\xff",
        b"\xff\xd8\xff\xe0\x00",
        b"\xff\xd8\xff\xc0\x00\x11\x08\x00\x00\x00\x10",  # SOF with height 0
    ],
)
def test_garbage_is_refused_with_a_result_error(data):
    with pytest.raises(ResultError):
        check_result(data, (16, 16))


def test_check_header_reads_no_further_than_the_header():
    header_only = png_from_raw(320, 256, b"")[:33]  # nothing after IHDR
    assert check_header(header_only, (320, 256)).size == (320, 256)
    with pytest.raises(ResultError, match="instead of"):
        check_header(png_from_raw(12000, 9600, b"")[:33], (320, 256))
    with pytest.raises(ResultError, match="truncated"):
        check_result(header_only, (320, 256))
