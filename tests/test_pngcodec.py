import io
import os
import zlib

import pytest
from flux_outpaint.errors import ResultError
from flux_outpaint.pngcodec import SIGNATURE, decode_png, encode_png, has_chunk, png_size
from PIL import Image


@pytest.mark.parametrize(("channels", "mode"), [(1, "L"), (2, "LA"), (3, "RGB"), (4, "RGBA")])
def test_encode_roundtrip_with_pillow(channels, mode):
    w, h = 37, 23
    pixels = os.urandom(w * h * channels)
    data = encode_png(pixels, w, h, channels)
    image = Image.open(io.BytesIO(data))
    assert image.mode == mode and image.size == (w, h)
    assert image.tobytes() == pixels
    assert png_size(data) == (w, h)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P"])
@pytest.mark.parametrize("optimize", [False, True])
def test_decode_pillow_pngs(mode, optimize):
    w, h = 41, 17
    src = Image.frombytes("RGB", (w, h), os.urandom(w * h * 3))
    src = src.quantize(200) if mode == "P" else src.convert(mode)
    out = io.BytesIO()
    src.save(out, "PNG", optimize=optimize)
    pixels, dw, dh, channels = decode_png(out.getvalue())
    expected = src.convert("RGB") if mode == "P" else src
    assert (dw, dh) == (w, h)
    assert pixels == expected.tobytes()
    assert channels == len(expected.getbands())


def test_decode_rejects_garbage():
    with pytest.raises(ResultError):
        decode_png(b"GIF89a....")
    good = encode_png(b"\x00" * 12, 2, 2, 3)
    broken = good.replace(zlib.compress(b"x"), b"")[:-20] + b"\x00" * 20
    with pytest.raises(ResultError):
        decode_png(broken)


def test_decode_refuses_a_size_over_its_limit_before_inflating():
    header = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (60000).to_bytes(4, "big") * 2
    with pytest.raises(ResultError, match="Refusing to decode"):
        decode_png(header + b"\x08\x06\x00\x00\x00" + bytes(100))
    small = encode_png(bytes(16 * 16 * 4), 16, 16, 4)
    with pytest.raises(ResultError, match="Refusing"):
        decode_png(small, max_pixels=100)


def test_decode_inflates_no_further_than_the_header_allows():
    # A 16×16 grey PNG whose image data inflates to 64 MiB: the decoder stops at the first
    # byte past 16 × (16 + 1) and never holds the rest.
    inflater = zlib.compressobj(9)
    body = b"".join(inflater.compress(bytes(1 << 20)) for _ in range(64)) + inflater.flush()
    good = encode_png(bytes(256), 16, 16, 1)
    ihdr_end = 8 + 25
    idat = len(body).to_bytes(4, "big") + b"IDAT" + body
    idat += (zlib.crc32(b"IDAT" + body) & 0xFFFFFFFF).to_bytes(4, "big")
    bomb = good[:ihdr_end] + idat + good[-12:]
    with pytest.raises(ResultError, match="bomb"):
        decode_png(bomb)


def test_has_chunk_reads_chunk_headers_only():
    png = encode_png(bytes(4 * 4 * 3), 4, 4, channels=3)
    assert png.startswith(SIGNATURE)
    assert has_chunk(io.BytesIO(png), b"IDAT") and not has_chunk(io.BytesIO(png), b"eXIf")
    late = png[:-12] + b"\x00\x00\x00\x00eXIf" + bytes(4) + png[-12:]  # after the pixels
    assert has_chunk(io.BytesIO(late), b"eXIf")
    assert not has_chunk(io.BytesIO(b"GIF89a" + bytes(20)), b"IDAT")
    assert not has_chunk(io.BytesIO(png[:40]), b"IEND")  # ends early
