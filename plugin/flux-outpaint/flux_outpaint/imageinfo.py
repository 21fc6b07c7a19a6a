"""What a returned PNG or JPEG says about itself, read without decoding a single pixel.

A result comes from the network, and its header decides how much memory a decoder will
allocate.  So before Pillow, GdkPixbuf or ``pngcodec`` sees the bytes:

* ``read_header`` takes the size from the PNG ``IHDR`` chunk or the JPEG ``SOFn`` segment;
* ``check_header`` compares it with the planned output size (``framing.check_size``: the
  requested size or a uniformly scaled-down one) or, when no plan is known, with
  ``MAX_RESULT_PIXELS``, and bounds what decoding will cost beyond the pixels: a JPEG's
  scans (a progressive file can repeat a cheap scan hundreds of thousands of times, and a
  decoder pays for each) and marker segments, a PNG's chunks (a decoder reads and checks
  each) and its image data in one unbroken run — all from a walk of the markers and chunk
  headers that reads no pixel, cheap enough to run right before every decode;
* ``check_result`` does that and checks that the file is whole: every PNG chunk present
  with a correct CRC, ``IEND`` last, and the image data inflating to exactly the byte count
  the header implies — inflated in bounded steps and abandoned at the first byte too many,
  so a decompression bomb costs neither memory nor more time than a true image of that
  size; a JPEG must reach its end-of-image marker.

Every failure is a ResultError with a one-line reason; the pipeline runs this before a
result is cached, so a broken or hostile download is never kept as a paid result.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

from .errors import ResultError
from .framing import check_size
from .i18n import _
from .planning import MAX_CANVAS_PIXELS
from .pngcodec import SIGNATURE

__all__ = [
    "MAX_JPEG_SCANS",
    "MAX_JPEG_SEGMENTS",
    "MAX_PNG_ANCILLARY_CHUNKS",
    "MAX_PNG_CHUNKS",
    "MAX_RESULT_PIXELS",
    "TEXT_CHUNKS",
    "ImageInfo",
    "check_complete",
    "check_header",
    "check_result",
    "read_header",
    "strip_text",
]

# With no plan to compare against (a request recovered by id alone): fal's outputs stay
# within MAX_CANVAS_PIXELS; twice that leaves room and still bounds a decode to 32 MB RGBA.
MAX_RESULT_PIXELS = 2 * MAX_CANVAS_PIXELS

# Decoding cost beyond the pixel count.  An encoder's progressive JPEG has about ten scans
# (libjpeg's default script; mozjpeg's searched ones a few dozen); each scan costs a decoder
# a pass over the image's coefficients, so this many at 4 MP stays around a second.
MAX_JPEG_SCANS = 64
# Marker segments of any kind (tables, APPn, scans; restart markers inside a scan are not
# segments): a decoder parses each.
MAX_JPEG_SEGMENTS = 512
# A PNG's image data in 8 KiB chunks (libpng's default) fills MAX_RESULT_BYTES with 8192
# of them; anything near a million tiny chunks is built to make a decoder work.
MAX_PNG_CHUNKS = 16384
# Chunks other than IHDR, PLTE, IDAT and IEND: text, colour and time notes.  Real files carry
# a handful; each may be inflated by a decoder (zTXt, iTXt).
MAX_PNG_ANCILLARY_CHUNKS = 64
# What a cached result keeps of a PNG's notes: none of its text (a server could hide the key
# there); a JPEG loses its comment and APP1 (Exif/XMP) and APP13 (IPTC) segments.
TEXT_CHUNKS = frozenset({b"tEXt", b"zTXt", b"iTXt"})
_JPEG_TEXT_SEGMENTS = frozenset({0xFE, 0xE1, 0xED})
_PNG_CRITICAL = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND"})
# The next marker after entropy-coded data: 0xFF not followed by a stuffed zero, a restart
# marker or another fill byte.
_JPEG_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")

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
    # JPEG only: the colour components do not all share the luma's sampling (4:2:0, 4:2:2…)
    chroma_subsampled: bool = False

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
    raise ResultError(_("The result is not a PNG or JPEG image"))


def check_complete(data: bytes, info: ImageInfo) -> None:
    """ResultError unless the file is whole (see the module docstring)."""
    if info.content_type == "image/png":
        _check_png(data, info)
    else:
        _check_jpeg(data)


def check_header(
    data: bytes, want: tuple[int, int] | None, *, max_pixels: int = MAX_RESULT_PIXELS
) -> ImageInfo:
    """The header, its size and the file's structure (no pixel data read): what a decoder is
    about to allocate and how much work it will be made to do.

    ``want`` is the plan's ``request_output``; None when no plan is known, then only
    ``max_pixels`` bounds the size.  A file cut short passes here (``check_complete`` is
    the judge of that).
    """
    info = read_header(data)
    if want is not None:
        check_size(info.size, want)
    elif info.width * info.height > max_pixels:
        raise ResultError(
            _(
                "The result claims to be {width}×{height} pixels, more than any "
                "outpaint result; it was not decoded"
            ).format(width=info.width, height=info.height)
        )
    if info.content_type == "image/png":
        _png_structure(data)
    else:
        _jpeg_structure(data)
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
        raise ResultError(_("The result PNG is truncated (no complete header)"))
    length, kind = struct.unpack(">I4s", data[8:16])
    if kind != b"IHDR" or length != 13:
        raise ResultError(_("The result PNG is malformed (it does not start with its header)"))
    if zlib.crc32(data[12:29]) & 0xFFFFFFFF != struct.unpack(">I", data[29:33])[0]:
        raise ResultError(_("The result PNG is corrupt (its header fails its checksum)"))
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
        raise ResultError(_("The result PNG has an invalid header"))
    return ImageInfo("image/png", width, height, depth, colour, interlace == 1)


def _png_chunks(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, start, end) of each whole chunk in order, up to IEND; what is cut short ends
    the list.  ResultError past ``MAX_PNG_CHUNKS``."""
    found: list[tuple[bytes, int, int]] = []
    pos = 8
    while pos + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if end > len(data):
            break
        found.append((kind, pos, end))
        if len(found) > MAX_PNG_CHUNKS:
            raise ResultError(
                _(
                    "The result PNG has more than {count} chunks (a file built to make "
                    "decoding slow); it was not decoded"
                ).format(count=MAX_PNG_CHUNKS)
            )
        if kind == b"IEND":
            break
        pos = end
    return found


def _png_structure(data: bytes) -> None:
    chunks = _png_chunks(data)
    extra = sum(1 for kind, _start, _end in chunks if kind not in _PNG_CRITICAL)
    if extra > MAX_PNG_ANCILLARY_CHUNKS:
        raise ResultError(
            _(
                "The result PNG carries {count} ancillary chunks (more than {limit}); "
                "it was not decoded"
            ).format(count=extra, limit=MAX_PNG_ANCILLARY_CHUNKS)
        )
    runs, previous = 0, b""
    for kind, _start, _end in chunks:
        if kind == b"IDAT" and previous != b"IDAT":
            runs += 1
        previous = kind
    if runs > 1:
        raise ResultError(_("The result PNG is malformed (its image data is split)"))


def strip_text(data: bytes) -> bytes:
    """``data`` without its text notes (``TEXT_CHUNKS``; a JPEG's comment, Exif/XMP and IPTC
    segments), for keeping: a server could hide anything there, the key included.  The same
    bytes when there is nothing to strip or the file is not one this module has walked."""
    if data[:8] == SIGNATURE:
        chunks = _png_chunks(data)
        if not any(kind in TEXT_CHUNKS for kind, _start, _end in chunks):
            return data
        kept = [data[start:end] for kind, start, end in chunks if kind not in TEXT_CHUNKS]
        last = chunks[-1][2] if chunks else 8
        return data[:8] + b"".join(kept) + data[last:]
    if data[:3] == b"\xff\xd8\xff":
        segments, _scan = _jpeg_segments(data)
        cut = [(start, end) for marker, start, end in segments if marker in _JPEG_TEXT_SEGMENTS]
        if not cut:
            return data
        parts, done = [], 0
        for start, end in cut:
            parts.append(data[done:start])
            done = end
        parts.append(data[done:])
        return b"".join(parts)
    return data


def _check_png(data: bytes, info: ImageInfo) -> None:
    view = memoryview(data)
    expected = info.png_data_bytes()
    inflater = zlib.decompressobj()
    inflated = 0
    pos, seen_idat, idat_done = 8, False, False
    while True:
        if pos + 12 > len(data):
            raise ResultError(_("The result PNG is truncated (it ends before its last chunk)"))
        length, kind = struct.unpack(">I4s", view[pos : pos + 8])
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > len(data):
            raise ResultError(_("The result PNG is truncated (a chunk runs past its end)"))
        body = view[pos + 8 : end - 4]
        crc = zlib.crc32(view[pos + 4 : end - 4]) & 0xFFFFFFFF
        if crc != struct.unpack(">I", view[end - 4 : end])[0]:
            raise ResultError(
                _("The result PNG is corrupt (chunk {chunk} fails its checksum)").format(
                    chunk=repr(kind)
                )
            )
        if kind == b"IDAT":
            if idat_done:
                raise ResultError(_("The result PNG is malformed (its image data is split)"))
            seen_idat = True
            inflated = _inflate_bounded(inflater, body, inflated, expected, info)
        elif seen_idat:
            idat_done = True
        if kind == b"IEND":
            break
        pos = end
    if not seen_idat:
        raise ResultError(_("The result PNG has no image data"))
    inflated = _inflate_bounded(inflater, b"", inflated, expected, info)
    if inflated < expected or not inflater.eof:
        raise ResultError(_("The result PNG is truncated (its image data ends early)"))


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
                    _(
                        "The result PNG holds more image data than its {width}×{height} "
                        "pixels need (a decompression bomb); it was not decoded"
                    ).format(width=info.width, height=info.height)
                )
            pending = inflater.unconsumed_tail
            if not pending and not out:
                return done
    except zlib.error as exc:
        raise ResultError(_("The result PNG is corrupt ({reason})").format(reason=exc)) from None


# -- JPEG ----------------------------------------------------------------------------------


def _jpeg_header(data: bytes) -> ImageInfo:
    info, _scan = _jpeg_walk(data)
    return info


def _jpeg_walk(data: bytes) -> tuple[ImageInfo, int]:
    """The frame size, and where the first scan starts (the marker segments walked in
    order, so markers inside an embedded thumbnail are never mistaken for the image's)."""
    info: ImageInfo | None = None
    pos = 2
    while pos < len(data):
        if data[pos] != 0xFF:
            raise ResultError(_("The result JPEG is malformed (a marker is missing)"))
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
            raise ResultError(_("The result JPEG is malformed (a segment has no length)"))
        if marker in _JPEG_SOF and info is None:
            if pos + 7 > len(data):
                break
            height, width = struct.unpack(">HH", data[pos + 3 : pos + 7])
            if width == 0 or height == 0:
                raise ResultError(_("The result JPEG has an invalid size in its header"))
            # then the component count and, per component, id, H×V sampling, table
            end = min(pos + length, len(data))
            factors = set(data[pos + 9 : end : 3][: data[pos + 7] if pos + 7 < end else 0])
            info = ImageInfo("image/jpeg", width, height, chroma_subsampled=len(factors) > 1)
        pos += length
    if info is not None:
        return info, len(data)  # a frame header but no scan: the size is known, data is not
    raise ResultError(_("The result JPEG is truncated (no frame header)"))


def _jpeg_segments(data: bytes) -> tuple[list[tuple[int, int, int]], int]:
    """(marker, start, end) of each marker segment with a length, in order, past the scans
    (their entropy-coded data skipped to the next marker), and how many scans there were;
    ends at EOI or where the file is cut short.  ResultError past the limits above."""
    segments: list[tuple[int, int, int]] = []
    scans = 0
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ResultError(_("The result JPEG is malformed (a marker is missing)"))
        start = pos
        while pos < len(data) and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos + 3 > len(data):
            break
        marker = data[pos]
        pos += 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker == 0xD9:
            break
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if length < 2:
            raise ResultError(_("The result JPEG is malformed (a segment has no length)"))
        pos += length
        segments.append((marker, start, min(pos, len(data))))
        if len(segments) > MAX_JPEG_SEGMENTS:
            raise ResultError(
                _(
                    "The result JPEG has more than {count} marker segments (a file "
                    "built to make decoding slow); it was not decoded"
                ).format(count=MAX_JPEG_SEGMENTS)
            )
        if marker == 0xDA:
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise ResultError(
                    _(
                        "The result JPEG has more than {count} scans (a file built to "
                        "make decoding slow); it was not decoded"
                    ).format(count=MAX_JPEG_SCANS)
                )
            found = _JPEG_NEXT_MARKER.search(data, pos)
            if found is None:
                break
            pos = found.start()
    return segments, scans


def _jpeg_structure(data: bytes) -> None:
    _jpeg_segments(data)


def _check_jpeg(data: bytes) -> None:
    # Entropy-coded data escapes every 0xFF, so the end-of-image marker cannot occur inside
    # it: a whole JPEG has one after its first scan.
    _info, scan = _jpeg_walk(data)
    if scan >= len(data) or data.find(b"\xff\xd9", scan) < 0:
        raise ResultError(_("The result JPEG is truncated (it ends before its last marker)"))
