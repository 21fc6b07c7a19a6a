"""What a returned PNG or JPEG says about itself, read without decoding a single pixel.

A result comes from the network, and its header decides how much memory a decoder will
allocate.  So before Pillow, GdkPixbuf or ``pngcodec`` sees the bytes:

* ``read_header`` takes the size from the PNG ``IHDR`` chunk or the JPEG ``SOFn`` segment;
* ``check_header`` compares it with the planned output size (``framing.check_size``: the
  requested size or a uniformly scaled-down one) or, when no plan is known, with
  ``MAX_RESULT_PIXELS`` — cheap enough to run right before every decode;
* ``check_result`` does that and checks that the file is whole: every PNG chunk present
  with a correct CRC, ``IEND`` last, and the image data inflating to exactly the byte count
  the header implies — inflated in bounded steps and abandoned at the first byte too many,
  so a decompression bomb costs neither memory nor more time than a true image of that
  size; a JPEG must reach its end-of-image marker.

Every failure is a ResultError with a one-line reason; the pipeline runs this before a
result is cached, so a broken or hostile download is never kept as a paid result.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from .errors import ResultError
from .framing import check_size
from .planning import MAX_CANVAS_PIXELS
from .pngcodec import SIGNATURE

__all__ = [
    "MAX_RESULT_PIXELS",
    "ImageInfo",
    "check_complete",
    "check_header",
    "check_result",
    "read_header",
]

# With no plan to compare against (a request recovered by id alone): fal's outputs stay
# within MAX_CANVAS_PIXELS; twice that leaves room and still bounds a decode to 32 MB RGBA.
MAX_RESULT_PIXELS = 2 * MAX_CANVAS_PIXELS

# colour type → samples per pixel
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
# Adam7: (x start, y start, x step, y step) per pass
_ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)
_INFLATE_STEP = 1 << 16
# SOFn markers that carry the frame size (not DHT C4, JPG C8, DAC CC)
_JPEG_SOF = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


@dataclass(frozen=True)
class ImageInfo:
    content_type: str  # "image/png" | "image/jpeg"
    width: int
    height: int
    # PNG only: the IHDR fields that decide how many bytes the image data inflates to
    bit_depth: int = 8
    colour_type: int = 0
    interlaced: bool = False

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def png_data_bytes(self) -> int:
        """The exact length of a PNG's inflated image data (filter bytes included)."""
        bits = _PNG_CHANNELS[self.colour_type] * self.bit_depth
        passes = _ADAM7 if self.interlaced else ((0, 0, 1, 1),)
        total = 0
        for x0, y0, dx, dy in passes:
            w = (self.width - x0 + dx - 1) // dx
            h = (self.height - y0 + dy - 1) // dy
            if w > 0 and h > 0:
                total += ((w * bits + 7) // 8 + 1) * h
        return total


def read_header(data: bytes) -> ImageInfo:
    """The image's type and size from its first bytes; ResultError if it is neither a PNG
    nor a JPEG, or its header is malformed."""
    if data[:8] == SIGNATURE:
        return _png_header(data)
    if data[:3] == b"\xff\xd8\xff":
        return _jpeg_header(data)
    raise ResultError("The result is not a PNG or JPEG image")


def check_complete(data: bytes, info: ImageInfo) -> None:
    """ResultError unless the file is whole (see the module docstring)."""
    if info.content_type == "image/png":
        _check_png(data, info)
    else:
        _check_jpeg(data)


def check_header(
    data: bytes, want: tuple[int, int] | None, *, max_pixels: int = MAX_RESULT_PIXELS
) -> ImageInfo:
    """The header and its size only (no data read): what a decoder is about to allocate.

    ``want`` is the plan's ``request_output``; None when no plan is known, then only
    ``max_pixels`` bounds the size.
    """
    info = read_header(data)
    if want is not None:
        check_size(info.size, want)
    elif info.width * info.height > max_pixels:
        raise ResultError(
            f"The result claims to be {info.width}×{info.height} pixels, more than any "
            "outpaint result; it was not decoded"
        )
    return info


def check_result(
    data: bytes, want: tuple[int, int] | None, *, max_pixels: int = MAX_RESULT_PIXELS
) -> ImageInfo:
    """Header, size and completeness of a returned image, before anything decodes it
    (``check_header``, then ``check_complete``)."""
    info = check_header(data, want, max_pixels=max_pixels)
    check_complete(data, info)
    return info


# -- PNG -----------------------------------------------------------------------------------


def _png_header(data: bytes) -> ImageInfo:
    if len(data) < 33:
        raise ResultError("The result PNG is truncated (no complete header)")
    length, kind = struct.unpack(">I4s", data[8:16])
    if kind != b"IHDR" or length != 13:
        raise ResultError("The result PNG is malformed (it does not start with its header)")
    if zlib.crc32(data[12:29]) & 0xFFFFFFFF != struct.unpack(">I", data[29:33])[0]:
        raise ResultError("The result PNG is corrupt (its header fails its checksum)")
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(
        ">IIBBBBB", data[16:29]
    )
    if (
        width == 0
        or height == 0
        or width > 0x7FFFFFFF
        or height > 0x7FFFFFFF
        or colour not in _PNG_DEPTHS
        or depth not in _PNG_DEPTHS[colour]
        or compression != 0
        or filtering != 0
        or interlace not in (0, 1)
    ):
        raise ResultError("The result PNG has an invalid header")
    return ImageInfo("image/png", width, height, depth, colour, interlace == 1)


def _check_png(data: bytes, info: ImageInfo) -> None:
    view = memoryview(data)
    expected = info.png_data_bytes()
    inflater = zlib.decompressobj()
    inflated = 0
    pos, seen_idat, idat_done = 8, False, False
    while True:
        if pos + 12 > len(data):
            raise ResultError("The result PNG is truncated (it ends before its last chunk)")
        length, kind = struct.unpack(">I4s", view[pos : pos + 8])
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > len(data):
            raise ResultError("The result PNG is truncated (a chunk runs past its end)")
        body = view[pos + 8 : end - 4]
        crc = zlib.crc32(view[pos + 4 : end - 4]) & 0xFFFFFFFF
        if crc != struct.unpack(">I", view[end - 4 : end])[0]:
            raise ResultError(f"The result PNG is corrupt (chunk {kind!r} fails its checksum)")
        if kind == b"IDAT":
            if idat_done:
                raise ResultError("The result PNG is malformed (its image data is split)")
            seen_idat = True
            inflated = _inflate_bounded(inflater, body, inflated, expected, info)
        elif seen_idat:
            idat_done = True
        if kind == b"IEND":
            break
        pos = end
    if not seen_idat:
        raise ResultError("The result PNG has no image data")
    inflated = _inflate_bounded(inflater, b"", inflated, expected, info)
    if inflated < expected or not inflater.eof:
        raise ResultError("The result PNG is truncated (its image data ends early)")


def _inflate_bounded(
    inflater: zlib._Decompress, data: bytes | memoryview, done: int, expected: int, info: ImageInfo
) -> int:
    """Inflate ``data`` in steps, discarding the output; count it, refuse past ``expected``."""
    pending: bytes | memoryview = data
    try:
        while True:
            out = inflater.decompress(pending, _INFLATE_STEP)
            done += len(out)
            if done > expected:
                raise ResultError(
                    f"The result PNG holds more image data than its {info.width}×"
                    f"{info.height} pixels need (a decompression bomb); it was not decoded"
                )
            pending = inflater.unconsumed_tail
            if not pending and not out:
                return done
    except zlib.error as exc:
        raise ResultError(f"The result PNG is corrupt ({exc})") from None


# -- JPEG ----------------------------------------------------------------------------------


def _jpeg_header(data: bytes) -> ImageInfo:
    info, _ = _jpeg_walk(data)
    return info


def _jpeg_walk(data: bytes) -> tuple[ImageInfo, int]:
    """The frame size, and where the first scan starts (the marker segments walked in
    order, so markers inside an embedded thumbnail are never mistaken for the image's)."""
    info: ImageInfo | None = None
    pos = 2
    while pos < len(data):
        if data[pos] != 0xFF:
            raise ResultError("The result JPEG is malformed (a marker is missing)")
        while pos < len(data) and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= len(data):
            break
        marker = data[pos]
        pos += 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker == 0xDA:
            if info is None:
                break
            return info, pos
        if marker == 0xD9:  # end of image before any scan
            break
        if pos + 2 > len(data):
            break
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if length < 2:
            raise ResultError("The result JPEG is malformed (a segment has no length)")
        if marker in _JPEG_SOF and info is None:
            if pos + 7 > len(data):
                break
            height, width = struct.unpack(">HH", data[pos + 3 : pos + 7])
            if width == 0 or height == 0:
                raise ResultError("The result JPEG has an invalid size in its header")
            info = ImageInfo("image/jpeg", width, height)
        pos += length
    if info is not None:
        return info, len(data)  # a frame header but no scan: the size is known, data is not
    raise ResultError("The result JPEG is truncated (no frame header)")


def _check_jpeg(data: bytes) -> None:
    # Entropy-coded data escapes every 0xFF, so the end-of-image marker cannot occur inside
    # it: a whole JPEG has one after its first scan.
    _, scan = _jpeg_walk(data)
    if scan >= len(data) or data.find(b"\xff\xd9", scan) < 0:
        raise ResultError("The result JPEG is truncated (it ends before its last marker)")
