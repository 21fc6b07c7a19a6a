"""Result images judged by their headers, before any pixel is decoded."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from flux_outpaint import imageinfo
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
    # Pillow's default is 4:2:0
    subsampled = kw.get("subsampling") != 0
    assert info == ImageInfo("image/jpeg", 41, 29, chroma_subsampled=subsampled)


@pytest.mark.parametrize(
    ("image", "kw", "subsampled"),
    [
        (Image.new("RGB", (40, 24), (200, 30, 90)), {"subsampling": 0}, False),
        (Image.new("RGB", (40, 24), (200, 30, 90)), {"subsampling": 1}, True),  # 4:2:2
        (Image.new("RGB", (40, 24), (200, 30, 90)), {"subsampling": 2}, True),  # 4:2:0
        (Image.new("L", (40, 24), 90), {}, False),  # one component: nothing to subsample
    ],
)
def test_a_jpegs_chroma_sampling_is_read_from_its_frame_header(image, kw, subsampled):
    data = pillow(image, "JPEG", quality=92, **kw)
    assert read_header(data).chroma_subsampled is subsampled
    # a frame header cut inside its component list claims no subsampling it cannot show
    sof = data.index(b"\xff\xc0")
    assert not read_header(data[: sof + 12]).chroma_subsampled


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


# -- decoding cost, judged from the structure -----------------------------------------------


def jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each segment, a scan with its entropy-coded data."""
    import re

    pos, found = 2, []
    while pos < len(data):
        marker = data[pos + 1]
        if marker == 0xD9:
            found.append((marker, pos, pos + 2))
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        end = pos + 2 + length
        if marker == 0xDA:
            end = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]").search(data, end).start()
        found.append((marker, pos, end))
        pos = end
    return found


def scan_bomb(scans: int, size=(256, 128)) -> bytes:
    """A valid progressive JPEG whose last scan (with its Huffman table) is repeated until
    the file has ``scans`` scans: each costs a decoder a pass over every coefficient."""
    data = pillow(Image.new("RGB", size, (120, 130, 140)), "JPEG", progressive=True)
    segments = jpeg_segments(data)
    last = max(i for i, (m, _, _) in enumerate(segments) if m == 0xDA)
    first = last
    while segments[first - 1][0] == 0xC4:
        first -= 1
    piece = data[segments[first][1] : segments[last][2]]
    have = sum(1 for m, _, _ in segments if m == 0xDA)
    eoi = segments[-1][1]
    return data[:eoi] + piece * (scans - have) + data[eoi:]


def test_an_encoders_progressive_jpeg_passes():
    data = pillow(Image.new("RGB", (640, 480), (10, 200, 30)), "JPEG", progressive=True)
    assert check_result(data, (640, 480)).size == (640, 480)
    assert check_result(scan_bomb(imageinfo.MAX_JPEG_SCANS), (256, 128)).size == (256, 128)


def test_a_jpeg_that_repeats_a_scan_is_refused_before_decoding():
    bomb = scan_bomb(imageinfo.MAX_JPEG_SCANS + 1)
    Image.open(io.BytesIO(bomb)).load()  # a decoder takes it: valid, only slow
    for check in (check_header, check_result):
        with pytest.raises(ResultError, match="more than 64 scans"):
            check(bomb, (256, 128))


def test_a_jpeg_full_of_segments_is_refused():
    data = pillow(Image.new("RGB", (64, 64)), "JPEG")
    comment = b"\xff\xfe\x00\x04hi"
    bloated = data[:2] + comment * (imageinfo.MAX_JPEG_SEGMENTS + 1) + data[2:]
    with pytest.raises(ResultError, match="marker segments"):
        check_header(bloated, (64, 64))


def test_png_chunk_counts_are_bounded():
    good = pillow(Image.new("RGB", (32, 32)), "PNG")
    iend = good.rindex(b"IEND") - 4
    notes = chunk(b"tEXt", b"k\x00v") * (imageinfo.MAX_PNG_ANCILLARY_CHUNKS + 1)
    with pytest.raises(ResultError, match="ancillary chunks"):
        check_header(good[:iend] + notes + good[iend:], (32, 32))
    # image data in a million pieces: every one a read and a checksum for a decoder
    raw = zlib.compress(bytes((32 * 3 + 1) * 32))
    pieces = b"".join(chunk(b"IDAT", raw[i : i + 1]) for i in range(len(raw)))
    empty = chunk(b"IDAT", b"") * (imageinfo.MAX_PNG_CHUNKS + 1)
    head = good[: good.index(b"IDAT") - 4]
    assert check_result(head + pieces + chunk(b"IEND", b""), (32, 32))
    with pytest.raises(ResultError, match="more than 16384 chunks"):
        check_header(head + pieces + empty + chunk(b"IEND", b""), (32, 32))


def test_split_image_data_is_refused_from_the_header_walk():
    raw = zlib.compress(bytes((8 * 3 + 1) * 8))
    head = png_from_raw(8, 8, b"")[:33]
    split = head + chunk(b"IDAT", raw[:5]) + chunk(b"tIME", bytes(7)) + chunk(b"IDAT", raw[5:])
    with pytest.raises(ResultError, match="split"):
        check_header(split + chunk(b"IEND", b""), (8, 8))


def test_text_notes_are_stripped_from_a_kept_png():
    key = "strip-test-key-0123456789abcdef"
    image = Image.new("RGB", (40, 30), (1, 2, 3))
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", f"Key {key}")
    info.add_text("Compressed", key * 10, zip=True)
    info.add_itxt("Intl", key, lang="en", zip=False)
    data = pillow(image, "PNG", pnginfo=info)
    assert key.encode() in data
    kept = imageinfo.strip_text(data)
    assert key.encode() not in kept and all(t not in kept for t in (b"tEXt", b"zTXt", b"iTXt"))
    assert check_result(kept, (40, 30)).size == (40, 30)
    assert Image.open(io.BytesIO(kept)).tobytes() == image.tobytes()
    plain = pillow(image, "PNG")
    assert imageinfo.strip_text(plain) is plain  # nothing to strip: the same bytes


def test_text_segments_are_stripped_from_a_kept_jpeg():
    key = b"strip-test-key-0123456789abcdef"
    data = pillow(Image.new("RGB", (40, 30), (9, 99, 199)), "JPEG", quality=95)
    marked = data[:2] + b"\xff\xfe" + struct.pack(">H", len(key) + 2) + key
    exif = b"Exif\x00\x00" + key
    marked += b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + data[2:]
    kept = imageinfo.strip_text(marked)
    assert key not in kept and check_result(kept, (40, 30))
    assert Image.open(io.BytesIO(kept)).tobytes() == Image.open(io.BytesIO(data)).tobytes()
