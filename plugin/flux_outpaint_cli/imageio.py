"""Pillow and numpy at the CLI's edges: the reference encoder injected into the core
(``flux_outpaint.payload.Encoder``) and the writers of the output file.

Output types (by the output name's suffix, see ``outputs.FORMATS``):

* **PNG** — written here, not by Pillow: 8 or 16 bits per sample, the "Up" filter and zlib
  level 1 over row blocks compressed in parallel (a 27 MP photo in about half a second,
  where Pillow's adaptive filter at level 1 takes four times as long for a file of the same
  size).  Carries the ICC profile (iCCP), EXIF (eXIf) and the resolution (pHYs).
* **TIFF** — Pillow (Deflate) for 8-bit, 16-bit grey and float; 16-bit RGB(A) written here
  (uncompressed, with the ICC profile; Pillow has no 16-bit RGB mode).
* **JPEG** — Pillow, quality ``DEFAULT_JPEG_QUALITY`` with 4:4:4 chroma unless ``--quality``
  says otherwise; 8 bits, no alpha (JPEG has neither more bits nor alpha).
* **WebP** — Pillow, lossless unless ``--quality`` is given; 8 bits.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from flux_outpaint import pngcodec
from flux_outpaint.payload import Encoding
from PIL import Image, ImageCms

from . import floattiff, tiffwriter
from . import photo as ph

_SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}
# "Visually lossless": at 95 with full-resolution chroma no difference shows at 100 %.
DEFAULT_JPEG_QUALITY = 95
# Rows per compressed block: big enough that the sync-flush overhead is negligible, small
# enough that two cores share the work of a 4000-row image evenly.
PNG_BLOCK_ROWS = 128
PNG_LEVEL = 1
_WRITER_THREADS = max(1, min(4, os.cpu_count() or 1))


def encode(rgba: bytes, width: int, height: int, encoding: Encoding) -> bytes:
    """The core's reference encoder (sRGB RGBA 8-bit in, PNG or JPEG bytes out)."""
    image = Image.frombytes("RGBA", (width, height), rgba)
    out = io.BytesIO()
    if encoding.format == "jpeg":
        image.convert("RGB").save(
            out, "JPEG", quality=encoding.quality, subsampling=_SUBSAMPLING[encoding.subsampling]
        )
    else:
        bands = image.getextrema()  # (low, high) per band
        if len(bands) == 4 and bands[3][0] == 255:  # opaque: a quarter fewer bytes, no alpha
            image = image.convert("RGB")
        image.save(out, "PNG", compress_level=encoding.png_level)
    return out.getvalue()


@dataclass(frozen=True)
class Metadata:
    icc: bytes | None = None
    exif: bytes | None = None
    dpi: tuple[float, float] | None = None


def write(
    canvas: np.ndarray,
    space: ph.ColourSpace,
    fmt: str,
    out: BinaryIO,
    meta: Metadata,
    quality: int | None = None,
) -> list[str]:
    """Encode ``canvas`` as ``fmt`` into ``out``; returns notes on what had to change."""
    notes: list[str] = []
    if fmt == "PNG" and space.colour != "CMYK":
        _write_png(_png_samples(canvas, space, notes), space, out, meta)
        return notes
    if fmt == "TIFF" and space.dtype == "uint16" and space.colour == "RGB":
        _write_tiff16(canvas, space, out, meta)
        notes.append("EXIF is not carried into 16-bit RGB TIFF files")
        return notes
    if fmt == "TIFF" and space.dtype == "float32" and space.colour == "RGB":
        floattiff.write(canvas, meta.icc, out)  # Pillow cannot write float RGB(A)
        if meta.exif:
            notes.append("EXIF is not carried into float RGB TIFF files")
        return notes
    image, icc = _pillow_image(canvas, space, fmt, meta.icc, notes)
    options: dict[str, object] = {}
    if icc:
        options["icc_profile"] = icc
    if meta.exif and fmt != "PNG":
        options["exif"] = meta.exif
    if meta.dpi and fmt in ("JPEG", "TIFF", "PNG"):
        options["dpi"] = meta.dpi
    if fmt == "JPEG":
        q = DEFAULT_JPEG_QUALITY if quality is None else quality
        options.update(quality=q, subsampling=0 if q >= 90 else 2)
    elif fmt == "WEBP":
        if quality is None:
            options.update(lossless=True, quality=30, method=1, exact=True)
        else:
            options.update(quality=quality, method=4)
    elif fmt == "TIFF" and image.mode != "F":  # libtiff's Deflate refuses float samples
        options["compression"] = "tiff_adobe_deflate"
    elif fmt == "PNG":
        options["compress_level"] = PNG_LEVEL
    image.save(out, fmt, **options)
    return notes


def _png_samples(canvas: np.ndarray, space: ph.ColourSpace, notes: list[str]) -> np.ndarray:
    if space.dtype == "float32":
        notes.append("float samples were written as 16-bit PNG")
        values = canvas.astype(np.float64)
        scale = 65535.0 if float(np.nanmax(values, initial=0.0)) <= 1.0 else 257.0
        return np.clip(np.nan_to_num(values) * scale + 0.5, 0, 65535).astype(np.uint16)
    return canvas


def _pillow_image(
    canvas: np.ndarray, space: ph.ColourSpace, fmt: str, icc: bytes | None, notes: list[str]
) -> tuple[Image.Image, bytes | None]:
    """The canvas as a Pillow image the format can hold, and the profile to embed."""
    values = canvas
    if space.dtype == "float32" and fmt == "TIFF" and not space.alpha:
        return Image.fromarray(values[..., 0], "F"), icc
    if space.dtype == "uint16" and fmt == "TIFF" and space.colour == "L" and not space.alpha:
        return Image.fromarray(values[..., 0], "I;16"), icc
    if space.dtype != "uint8":
        notes.append(f"{fmt} holds 8 bits per sample: the output was reduced to 8 bits")
        values = ph.to_8bit(values, space.dtype)
    mode = space.pil_mode
    image = Image.fromarray(values[..., 0] if values.shape[-1] == 1 else values, mode)
    if mode == "CMYK" and fmt in ("PNG", "WEBP"):
        notes.append(f"{fmt} cannot hold CMYK: the output was converted to RGB")
        profile = ph._profile(icc, "CMYK")
        if profile is not None:
            image = ph.cms_apply(image, ph._transform(profile, "CMYK", True))
            icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
        else:
            image = image.convert("RGB")
    if fmt == "JPEG" and image.mode in ("RGBA", "LA"):
        notes.append("JPEG cannot hold transparency: the alpha channel was dropped")
        image = image.convert(image.mode[:-1])
    if fmt == "WEBP" and image.mode in ("L", "LA"):
        image = image.convert("RGBA" if image.mode == "LA" else "RGB")
    return image, icc


# -- PNG ------------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _write_png(values: np.ndarray, space: ph.ColourSpace, out: BinaryIO, meta: Metadata) -> None:
    height, width, channels = values.shape
    depth = 16 if values.dtype == np.uint16 else 8
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = (values.astype(">u2") if depth == 16 else values).reshape(height, -1)
    if rows.dtype != np.uint8:
        rows = rows.view(np.uint8).reshape(height, -1)
    out.write(pngcodec.SIGNATURE)
    out.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)))
    if meta.icc:
        out.write(_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(meta.icc)))
    if meta.dpi:
        ppm = [max(1, round(d / 0.0254)) for d in meta.dpi]
        out.write(_chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
    if meta.exif:
        raw = meta.exif[6:] if meta.exif.startswith(b"Exif\x00\x00") else meta.exif
        out.write(_chunk(b"eXIf", raw))
    blocks = range(0, height, PNG_BLOCK_ROWS)

    def deflate(start: int) -> tuple[bytes, int, int]:
        block = rows[start : start + PNG_BLOCK_ROWS]
        filtered = np.empty((block.shape[0], block.shape[1] + 1), np.uint8)
        filtered[:, 0] = 2  # "Up": each row minus the one above, a good fit for photos
        filtered[0, 1:] = block[0] - rows[start - 1] if start else block[0]
        np.subtract(block[1:], block[:-1], out=filtered[1:, 1:])
        data = filtered.data
        packer = zlib.compressobj(PNG_LEVEL, zlib.DEFLATED, -15)
        last = start + PNG_BLOCK_ROWS >= height
        body = packer.compress(data) + packer.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)
        return body, zlib.adler32(data), filtered.size

    adler = 1
    with ThreadPoolExecutor(_WRITER_THREADS) as pool:
        first = True
        for body, block_adler, length in pool.map(deflate, blocks):
            head = b"\x78\x01" if first else b""
            first = False
            adler = _adler32_combine(adler, block_adler, length)
            out.write(_chunk(b"IDAT", head + body))
    out.write(_chunk(b"IDAT", struct.pack(">I", adler)))
    out.write(_chunk(b"IEND", b""))


def _adler32_combine(adler1: int, adler2: int, length2: int) -> int:
    """zlib's adler32_combine: the checksum of two blocks from the checksums of each."""
    base = 65521
    rem = length2 % base
    sum1 = adler1 & 0xFFFF
    sum2 = (rem * sum1) % base
    sum1 += (adler2 & 0xFFFF) + base - 1
    sum2 += (adler1 >> 16) + (adler2 >> 16) + base - rem
    sum1 %= base
    sum2 %= base
    return sum1 | (sum2 << 16)


# -- 16-bit RGB TIFF --------------------------------------------------------------------------


def _write_tiff16(values: np.ndarray, space: ph.ColourSpace, out: BinaryIO, meta: Metadata) -> None:
    """A baseline little-endian TIFF: one uncompressed strip, 16 bits per sample."""
    height, width, channels = values.shape
    data = np.ascontiguousarray(values, dtype="<u2").tobytes()
    tags = tiffwriter.Tags()
    tags.long(256, width)
    tags.long(257, height)
    tags.short(258, *([16] * channels))
    tags.short(259, 1)  # no compression
    tags.short(262, 2)  # RGB
    tags.long(tiffwriter.STRIP_OFFSETS, 0)  # patched when written
    tags.short(277, channels)
    tags.long(278, height)
    tags.long(279, len(data))
    tags.short(284, 1)
    if space.alpha:
        tags.short(338, 2)  # unassociated alpha
    if meta.icc:
        tags.icc(meta.icc)
    tags.write(out, data)
