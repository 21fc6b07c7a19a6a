"""The input's metadata on its way to the output: the EXIF orientation, and the EXIF itself.

The orientation is read from the header alone where possible (a PNG's chunk list says
whether it has EXIF at all, ``pngcodec.has_chunk``), so inspecting a batch decodes no
pixels.  The output carries the input's EXIF upright (orientation 1: its pixels already
are), with its pixel dimensions where it states them, and without the tags that describe how
a TIFF stores its pixels.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

from flux_outpaint import pngcodec
from PIL import Image

ORIENTATION = 0x0112
EXIF_IFD = 0x8769
PIXEL_X_DIMENSION, PIXEL_Y_DIMENSION = 0xA002, 0xA003

# Tags that describe how a TIFF stores its pixels, not the photo (Pillow's getexif() of a TIFF
# holds them all): the output's writer sets its own, and stale ones break it.
_LAYOUT_TAGS = frozenset(
    (*range(254, 260), 262, 263, 266, 269, 273, *range(277, 294), 296, 297, *range(317, 326))
    + (330, *range(338, 342), 347, 513, 514, *range(529, 533), 34675)
)


def orientation_in(exif: Image.Exif) -> int:
    """The EXIF orientation 1–8 (1 when absent or nonsense)."""
    value = exif.get(ORIENTATION, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def orientation(image: Image.Image, data: bytes | None, path: Path | None) -> int:
    """The EXIF orientation of an image opened for its header, without decoding pixels where
    that can be avoided.

    Pillow decodes a whole PNG to look for EXIF that is not in front of the pixels; the
    chunk list says whether there is any, for the price of reading a few headers.
    """
    if image.format == "PNG" and "exif" not in image.info and not _png_late_exif(data, path):
        return 1
    return orientation_in(image.getexif())


def _png_late_exif(data: bytes | None, path: Path | None) -> bool:
    """True if the PNG has an eXIf chunk (one after the pixels, as Pillow's info lacks it)."""
    try:
        if data is not None:
            stream: BinaryIO = io.BytesIO(data)
        elif path is not None:
            stream = open(path, "rb")  # noqa: SIM115
        else:
            return True  # nothing to read: let Pillow find out
    except OSError:
        return True  # let Pillow find out (and fail) as before
    with stream:
        return pngcodec.has_chunk(stream, b"eXIf")


def exif_out(exif: Image.Exif, width: int, height: int) -> bytes | None:
    """The input's EXIF for the output: upright, and the right size where it says one."""
    if not len(exif):
        return None
    try:
        for tag in _LAYOUT_TAGS.intersection(exif):
            del exif[tag]
        if not len(exif):
            return None
        exif[ORIENTATION] = 1
        sub = exif.get_ifd(EXIF_IFD)
        if PIXEL_X_DIMENSION in sub or PIXEL_Y_DIMENSION in sub:
            sub[PIXEL_X_DIMENSION], sub[PIXEL_Y_DIMENSION] = width, height
        return exif.tobytes()
    except Exception:  # noqa: BLE001 - damaged EXIF: the picture matters, its notes do not
        return None


def exif_for_size(exif: bytes | None, width: int, height: int) -> bytes | None:
    """The carried EXIF with the output's pixel dimensions."""
    if exif is None:
        return None
    parsed = Image.Exif()
    try:
        parsed.load(exif)
    except Exception:  # noqa: BLE001 - damaged EXIF is dropped rather than failing the write
        return None
    return exif_out(parsed, width, height)
