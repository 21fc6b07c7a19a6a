"""RGB(A) float TIFF, which Pillow cannot open: read here, and written back as float.

Pillow handles one float channel (mode "F") but refuses 32-bit float RGB and RGBA.  What is
read: the first image of a TIFF (either byte order) with 3 or 4 samples of 32-bit IEEE float
(SampleFormat 3), chunky (PlanarConfiguration 1), in strips, uncompressed or Deflate
(Compression 8 / 32946) with no predictor or the floating-point predictor (3).  Tiled or
planar files, other compressions and other predictors are refused in one line, never
guessed at.  The pixel count is checked from the header (``MAX_INPUT_PIXELS``) and every
strip is inflated to at most its expected size, so a small file cannot make it allocate
more than the image it claims to be.

``header`` reads the size without the pixels; ``read`` decodes; ``write`` writes a
little-endian TIFF with one Deflate strip and the floating-point predictor (what GIMP and
Photoshop write), the ICC profile kept.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from flux_outpaint.errors import InputError

from . import tiffwriter

__all__ = ["FloatTiff", "header", "read", "write"]

_TYPES = {
    1: ("B", 1),
    3: ("H", 2),
    4: ("I", 4),
    7: ("B", 1),
    16: ("Q", 8),
}  # BYTE SHORT LONG UNDEF LONG8
_DEFLATE = (8, 32946)
_FLOAT_PREDICTOR = 3


@dataclass(frozen=True)
class FloatTiff:
    """What the header says, enough to plan without the pixels."""

    width: int
    height: int
    samples: int  # 3 (RGB) or 4 (RGBA)
    icc: bytes | None
    byteorder: str  # "<" or ">"
    compression: int
    predictor: int
    rows_per_strip: int
    offsets: tuple[int, ...]
    counts: tuple[int, ...]

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    @property
    def alpha(self) -> bool:
        return self.samples == 4


def header(data: bytes) -> FloatTiff | None:
    """The float RGB(A) TIFF's header; None when ``data`` is not a TIFF of that kind (then
    it is someone else's to read); InputError for one this module cannot read."""
    if data[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    order = "<" if data[:2] == b"II" else ">"
    try:
        tags = _tags(data, order)
    except (struct.error, IndexError, ValueError):
        return None
    formats = tags.get(339, (1,))
    bits = tags.get(258, (1,))
    samples = (tags.get(277) or (1,))[0]
    if set(formats) != {3} or set(bits) != {32} or samples not in (3, 4):
        return None
    if 322 in tags or 324 in tags:
        raise InputError("Tiled float TIFF is not supported: save it with strips")
    if (tags.get(284) or (1,))[0] != 1:
        raise InputError("Planar float TIFF is not supported: save it interleaved")
    compression = (tags.get(259) or (1,))[0]
    predictor = (tags.get(317) or (1,))[0]
    if compression not in (1, *_DEFLATE) or predictor not in (1, _FLOAT_PREDICTOR):
        raise InputError(
            f"Float TIFF with compression {compression}, predictor {predictor} is not "
            "supported: save it uncompressed or with Deflate"
        )
    width, height = tags[256][0], tags[257][0]
    offsets, counts = tags.get(273, ()), tags.get(279, ())
    if width <= 0 or height <= 0 or not offsets or len(offsets) != len(counts):
        return None
    icc = tags.get(34675)
    return FloatTiff(
        width,
        height,
        samples,
        bytes(icc) if icc else None,
        order,
        compression,
        predictor,
        (tags.get(278) or (height,))[0] or height,
        tuple(offsets),
        tuple(counts),
    )


def read(data: bytes, head: FloatTiff, max_pixels: int) -> np.ndarray:
    """The samples, H×W×C float32 (native order)."""
    w, h, c = head.width, head.height, head.samples
    if w * h > max_pixels:
        raise InputError(f"too many pixels (over {max_pixels:,})")
    row = w * c * 4
    out = bytearray()
    for index, (offset, count) in enumerate(zip(head.offsets, head.counts, strict=True)):
        rows = min(head.rows_per_strip, h - index * head.rows_per_strip)
        if rows <= 0:
            break
        want = rows * row
        raw = data[offset : offset + count]
        if head.compression in _DEFLATE:
            inflate = zlib.decompressobj()
            try:
                raw = inflate.decompress(raw, want)
            except zlib.error:
                raise InputError("damaged float TIFF (its Deflate data does not inflate)") from None
        if len(raw) != want:
            raise InputError("damaged float TIFF (a strip is shorter than its rows)")
        if head.predictor == _FLOAT_PREDICTOR:
            raw = _unpredict(raw, rows, w, c)
        out += raw
    if len(out) != h * row:
        raise InputError("damaged float TIFF (fewer strips than rows)")
    order = ">" if head.predictor == _FLOAT_PREDICTOR else head.byteorder
    values = np.frombuffer(bytes(out), dtype=f"{order}f4").reshape(h, w, c)
    return values.astype(np.float32)


def write(values: np.ndarray, icc: bytes | None, out: BinaryIO) -> None:
    """``values`` (H×W×3 or ×4 float) as a little-endian float TIFF (see the module)."""
    height, width, channels = values.shape
    data = zlib.compress(_predict(np.ascontiguousarray(values, dtype=">f4")), 6)
    tags = tiffwriter.Tags()
    tags.long(256, width)
    tags.long(257, height)
    tags.short(258, *([32] * channels))
    tags.short(259, 8)  # Deflate
    tags.short(262, 2)  # RGB
    tags.long(tiffwriter.STRIP_OFFSETS, 0)  # patched when written
    tags.short(277, channels)
    tags.long(278, height)
    tags.long(279, len(data))
    tags.short(284, 1)
    tags.short(317, _FLOAT_PREDICTOR)
    if channels == 4:
        tags.short(338, 2)  # unassociated alpha
    tags.short(339, *([3] * channels))
    if icc:
        tags.icc(icc)
    tags.write(out, data)


def _tags(data: bytes, order: str) -> dict[int, tuple[int, ...] | bytes]:
    (ifd,) = struct.unpack_from(f"{order}I", data, 4)
    (count,) = struct.unpack_from(f"{order}H", data, ifd)
    if count > 4096:
        raise ValueError("too many tags")
    tags: dict[int, tuple[int, ...] | bytes] = {}
    for n in range(count):
        tag, kind, number, raw = struct.unpack_from(f"{order}HHI4s", data, ifd + 2 + 12 * n)
        if kind not in _TYPES or number > len(data):
            continue
        code, size = _TYPES[kind]
        length = size * number
        if length <= 4:
            blob = raw[:length]
        else:
            (offset,) = struct.unpack(f"{order}I", raw)
            blob = data[offset : offset + length]
            if len(blob) != length:
                raise ValueError("a tag points past the end")
        tags[tag] = blob if kind == 7 else struct.unpack(f"{order}{number}{code}", blob)
    return tags


def _unpredict(raw: bytes, rows: int, width: int, samples: int) -> bytes:
    """Undo the floating-point predictor (Adobe's TIFF Technical Note 3, as libtiff): per
    row, byte-wise differences ``samples`` bytes apart over the float bytes regrouped most
    significant first.  Returns big-endian floats."""
    count = width * samples
    planes = np.frombuffer(raw, dtype=np.uint8).reshape(rows, count * 4 // samples, samples)
    summed = np.cumsum(planes, axis=1, dtype=np.uint8).reshape(rows, 4, count)
    return bytes(summed.transpose(0, 2, 1).tobytes())


def _predict(values: np.ndarray) -> bytes:
    """The floating-point predictor applied to big-endian ``values`` (H×W×C)."""
    h, _, c = values.shape
    as_bytes = np.frombuffer(values.tobytes(), dtype=np.uint8).reshape(h, -1, 4)
    planes = as_bytes.transpose(0, 2, 1).reshape(h, -1, c)
    diff = planes.copy()
    diff[:, 1:] = planes[:, 1:] - planes[:, :-1]
    return bytes(diff.tobytes())
