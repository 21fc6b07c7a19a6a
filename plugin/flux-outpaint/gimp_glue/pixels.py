"""Pixels in and out of GIMP, and PNG/JPEG through GdkPixbuf.

GIMP's Python has no numpy or Pillow: pixels travel as ``bytes`` in babl's ``"R'G'B'A u8"``
(8-bit sRGB-encoded RGBA), which GEGL converts to and from any image type and precision.
GdkPixbuf does the codecs in C; the stdlib ``outpaint.pngcodec`` is the fallback.  A returned
image's header is checked (``outpaint.imageinfo``) before either decoder sees it: its size
decides how much memory decoding takes.
"""

from __future__ import annotations

import gi

gi.require_version("Gegl", "0.4")
gi.require_version("GdkPixbuf", "2.0")
from gi.repository import GdkPixbuf, Gegl, GLib  # noqa: E402
from outpaint import imageinfo, pngcodec  # noqa: E402
from outpaint.errors import ResultError  # noqa: E402
from outpaint.geometry import Rect  # noqa: E402
from outpaint.payload import Encoding  # noqa: E402

RGBA = "R'G'B'A u8"
# The mask's byte is the layer's opacity there; the linear "Y" keeps that meaning whatever
# precision the image has (0 and 255 survive every conversion exactly).
MASK = "Y u8"
# Shrinking a big reference to fal's 4 MP: HYPER is GdkPixbuf's best filter (Mitchell-like
# reconstruction); BILINEAR is its box-like fast one.
RESAMPLE = GdkPixbuf.InterpType.HYPER


def read_rgba(drawable, local: Rect) -> bytes:
    """``local`` is in the drawable's own coordinates (the buffer's extent is (0, 0, w, h))."""
    buf = drawable.get_buffer()
    rect = Gegl.Rectangle.new(local.x, local.y, local.width, local.height)
    # Scale 1.0 only: scaled reads through the plug-in's tile backend returned black or
    # empty pixels in GIMP 3.0.4 and 3.2.6, so resampling is GdkPixbuf's job below.
    data = buf.get(rect, 1.0, RGBA, Gegl.AbyssPolicy.CLAMP)
    if len(data) != local.width * local.height * 4:
        raise ResultError(
            f"GIMP returned {len(data)} bytes for a {local.width}×{local.height} read"
        )
    return bytes(data)


def resample(rgba: bytes, width: int, height: int, size: tuple[int, int]) -> bytes:
    """RGBA u8 pixels scaled to ``size`` (alpha-weighted, box-like when shrinking)."""
    if (width, height) == size:
        return rgba
    scaled = _pixbuf(rgba, width, height).scale_simple(size[0], size[1], RESAMPLE)
    if scaled is None:
        raise ResultError(f"Could not scale the reference to {size[0]}×{size[1]}")
    return _rgba_bytes(scaled)


def read_reference(
    layer, reference: Rect, layer_origin: tuple[int, int], size: tuple[int, int]
) -> bytes:
    """The reference pixels (image coordinates) at the request's size."""
    local = reference.translate(-layer_origin[0], -layer_origin[1])
    return resample(read_rgba(layer, local), local.width, local.height, size)


def write_rgba(drawable, rgba: bytes, width: int, height: int) -> None:
    buf = drawable.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, width, height), RGBA, rgba)
    buf.flush()  # the core sees nothing until the plug-in's tile cache is flushed
    drawable.update(0, 0, width, height)


def write_mask(mask, data: bytes, width: int, height: int) -> None:
    buf = mask.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, width, height), MASK, data)
    buf.flush()
    mask.update(0, 0, width, height)


def _pixbuf(rgba: bytes, width: int, height: int):
    return GdkPixbuf.Pixbuf.new_from_bytes(
        GLib.Bytes.new(rgba), GdkPixbuf.Colorspace.RGB, True, 8, width, height, width * 4
    )


def encode(rgba: bytes, width: int, height: int, encoding: Encoding) -> bytes:
    """The reference as PNG or JPEG (an ``outpaint.payload.Encoder``).

    Options are always explicit: GdkPixbuf's default PNG level is slow, its JPEG default
    is q75.  Runs in the worker thread; GdkPixbuf never talks to GIMP.
    """
    if encoding.format == "png":
        try:
            ok, data = _pixbuf(rgba, width, height).save_to_bufferv(
                "png", ["compression"], [str(encoding.png_level)]
            )
            if ok and data:
                return bytes(data)
        except GLib.Error:
            pass
        return pngcodec.encode_png(rgba, width, height, 4, encoding.png_level)
    # JPEG has no alpha, and GdkPixbuf 2.44 (GIMP 3.2 on forky) turned an RGBA pixbuf into a
    # grey JPEG: hand it RGB.  The reference is opaque whenever JPEG is chosen.
    rgb = bytearray(width * height * 3)
    for channel in range(3):
        rgb[channel::3] = rgba[channel::4]
    pb = GdkPixbuf.Pixbuf.new_from_bytes(
        GLib.Bytes.new(bytes(rgb)), GdkPixbuf.Colorspace.RGB, False, 8, width, height, width * 3
    )
    ok, data = pb.save_to_bufferv("jpeg", ["quality"], [str(encoding.quality)])
    if not ok or not data:
        raise ResultError("Could not encode the reference as JPEG")
    return bytes(data)


def decode(data: bytes, want: tuple[int, int] | None = None) -> tuple[bytes, int, int]:
    """A returned PNG/JPEG as RGBA u8 ``(pixels, width, height)``.

    ``want`` is the planned output size (None: unknown); the header must agree with it, or
    stay within any outpaint result's size, before a single pixel is decoded.  (Whether
    the file is whole was checked before it was cached; see ``recover`` for cached copies.)
    """
    info = imageinfo.check_header(data, want)
    try:
        loader = GdkPixbuf.PixbufLoader()
        loader.write(data)
        loader.close()
        pb = loader.get_pixbuf()
    except GLib.Error as exc:
        if info.content_type == "image/png":
            return _decode_png_stdlib(data, info.width * info.height)
        raise ResultError(f"The returned image cannot be read: {exc.message}") from None
    if pb is None:
        raise ResultError("The returned image cannot be read")
    return _rgba_bytes(pb, with_size=True)


def _rgba_bytes(pb, with_size: bool = False):
    """A pixbuf's pixels as tightly packed RGBA u8 (optionally with its size)."""
    if not pb.get_has_alpha():
        # also normalises the rowstride to width*4 (3-channel rows may be padded)
        pb = pb.add_alpha(False, 0, 0, 0)
    width, height = pb.get_width(), pb.get_height()
    stride, row = pb.get_rowstride(), width * 4
    raw = pb.read_pixel_bytes().get_data()
    if stride == row:
        data = bytes(raw[: row * height])
    else:
        data = b"".join(raw[y * stride : y * stride + row] for y in range(height))
    return (data, width, height) if with_size else data


def _decode_png_stdlib(data: bytes, max_pixels: int) -> tuple[bytes, int, int]:
    pixels, width, height, channels = pngcodec.decode_png(data, max_pixels=max_pixels)
    if channels == 4:
        return pixels, width, height
    out = bytearray(width * height * 4)
    for i in range(width * height):
        px = pixels[i * channels : (i + 1) * channels]
        if channels in (1, 2):
            out[i * 4 : i * 4 + 3] = bytes((px[0],)) * 3
        else:
            out[i * 4 : i * 4 + 3] = px[:3]
        out[i * 4 + 3] = px[-1] if channels in (2, 4) else 255
    return bytes(out), width, height
