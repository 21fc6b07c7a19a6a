"""Pixels in and out of GIMP, and PNG/JPEG through GdkPixbuf.

GIMP's Python has no numpy or Pillow: pixels travel as ``bytes`` in babl's ``"R'G'B'A u8"``
(8-bit sRGB-encoded RGBA), which GEGL converts to and from any image type and precision.
GdkPixbuf does the codecs in C, except the reference's JPEG, which GEGL writes (4:4:4, see
``_jpeg_gegl``); the stdlib ``flux_outpaint.pngcodec`` is the fallback.  A returned image's
header is checked (``flux_outpaint.imageinfo``) before either decoder sees it: its size
decides how much memory decoding takes.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Literal, TypeVar, overload

import gi

gi.require_version("Gegl", "0.4")
gi.require_version("GdkPixbuf", "2.0")
from flux_outpaint import greyscale, imageinfo, pngcodec  # noqa: E402
from flux_outpaint.errors import ResultError  # noqa: E402
from flux_outpaint.geometry import Rect  # noqa: E402
from flux_outpaint.payload import Encoding  # noqa: E402
from gi.repository import GdkPixbuf, Gegl, GLib  # noqa: E402

if TYPE_CHECKING:  # annotations only: the entry file loads Gimp
    from gi.repository import Gimp

_In = TypeVar("_In")
_Out = TypeVar("_Out")

RGBA = "R'G'B'A u8"
RGB = "R'G'B' u8"
GREY = "Y'A u8"
# The mask's byte is the layer's opacity there; the linear "Y" keeps that meaning whatever
# precision the image has (0 and 255 survive every conversion exactly).
MASK = "Y u8"
# GdkPixbuf's BILINEAR averages over each new pixel's footprint when it shrinks (the
# reference down to fal's 4 MP) and interpolates bilinearly when it enlarges (the result up
# to the canvas).  Measured on photographs against GIMP's Cubic: as sharp or sharper, and
# 30x faster (docs/gimp-speed.md).  HYPER is deprecated since GdkPixbuf 2.38.
RESAMPLE = GdkPixbuf.InterpType.BILINEAR
NEAREST = GdkPixbuf.InterpType.NEAREST
# Enlarged pixels are made and sent to GIMP this many at a time: memory stays small
# whatever the canvas.
CHUNK_PIXELS = 1 << 20
# GdkPixbuf lets go of Python's lock while it scales, so parts of one picture are scaled on
# several cores at once (threads that never call GIMP).
THREADS = max(1, min(4, os.cpu_count() or 1))


def _read(drawable: Gimp.Drawable, local: Rect, fmt: str, channels: int) -> bytes:
    buf = drawable.get_buffer()
    rect = Gegl.Rectangle.new(local.x, local.y, local.width, local.height)
    # Scale 1.0 only: scaled reads through the plug-in's tile backend returned black or
    # empty pixels in GIMP 3.0.4 and 3.2.6, so resampling is GdkPixbuf's job.
    data = buf.get(rect, 1.0, fmt, Gegl.AbyssPolicy.CLAMP)
    if len(data) != local.width * local.height * channels:
        raise ResultError(
            f"GIMP returned {len(data)} bytes for a {local.width}×{local.height} read"
        )
    return bytes(data)


def read_rgba(drawable: Gimp.Drawable, local: Rect) -> bytes:
    """``local`` is in the drawable's own coordinates (the buffer's extent is (0, 0, w, h))."""
    return _read(drawable, local, RGBA, 4)


def read_pixels(drawable: Gimp.Drawable, local: Rect) -> tuple[bytes, bool]:
    """8-bit sRGB pixels of ``local``, with an alpha byte only if the drawable has alpha.

    Asking for the layer's own channels matters: the first R'G'B' u8 → R'G'B'A u8
    conversion in a process makes babl build a 16-million-entry table (0.45 s and 330 MB
    in GIMP 3.0.4 and 3.2.6), and every plug-in call is a new process.
    """
    alpha = bool(drawable.has_alpha())
    return _read(drawable, local, RGBA if alpha else RGB, 4 if alpha else 3), alpha


# The last reference shrunk from pixels without alpha, and the RGB picture it was made
# from: the JPEG encoder (worker thread) takes that picture instead of stripping the alpha
# it was given again.  Every call of the plug-in is a new process with one reference.
_rgb_of: tuple[bytes, GdkPixbuf.Pixbuf] | None = None


def shrink(data: bytes, width: int, height: int, alpha: bool, size: tuple[int, int]) -> bytes:
    """Pixels from ``read_pixels`` as RGBA u8 at ``size``."""
    global _rgb_of
    _rgb_of = None
    if alpha and (width, height) == size:
        return data
    pb = _pixbuf(data, width, height, alpha)
    if (width, height) != size:
        pb = _scaled(pb, size)
    rgba = _rgba_bytes(pb)
    _rgb_of = None if alpha else (rgba, pb)
    return rgba


def _scaled(pb: GdkPixbuf.Pixbuf, size: tuple[int, int]) -> GdkPixbuf.Pixbuf:
    """``pb`` scaled to ``size``: what ``scale_simple`` makes, in bands of rows at once."""
    dest = GdkPixbuf.Pixbuf.new(GdkPixbuf.Colorspace.RGB, pb.get_has_alpha(), 8, *size)
    if dest is None:
        raise ResultError(f"Could not scale the reference to {size[0]}×{size[1]}")
    sx, sy = size[0] / pb.get_width(), size[1] / pb.get_height()

    def band(r: Rect) -> None:
        pb.scale(dest, r.x, r.y, r.width, r.height, 0, 0, sx, sy, RESAMPLE)

    area = Rect(0, 0, *size)
    for _ in in_parallel(band, area.bands(-(-area.width * area.height // THREADS))):
        pass
    return dest


def in_parallel(
    fn: Callable[[_In], _Out], items: Iterable[_In], ahead: int = THREADS + 1
) -> Iterator[tuple[_In, _Out]]:
    """``(item, fn(item))`` in order, ``fn`` running on ``THREADS`` threads at most
    ``ahead`` items ahead of the consumer (so results never pile up in memory)."""
    if THREADS == 1:
        for item in items:
            yield item, fn(item)
        return
    with ThreadPoolExecutor(THREADS, thread_name_prefix="pixels") as pool:
        pending: deque[tuple[_In, Future[_Out]]] = deque()
        for item in items:
            pending.append((item, pool.submit(fn, item)))
            if len(pending) > ahead:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()


def resample(rgba: bytes, width: int, height: int, size: tuple[int, int]) -> bytes:
    """RGBA u8 pixels scaled to ``size`` (averaged over each new pixel when shrinking)."""
    if (width, height) == size:
        return rgba
    return shrink(rgba, width, height, True, size)


def read_reference(
    layer: Gimp.Layer, reference: Rect, layer_origin: tuple[int, int], size: tuple[int, int]
) -> bytes:
    """The reference pixels (image coordinates) as RGBA u8 at the request's size."""
    local = reference.translate(-layer_origin[0], -layer_origin[1])
    data, alpha = read_pixels(layer, local)
    return shrink(data, local.width, local.height, alpha, size)


def write_rgba(drawable: Gimp.Drawable, rgba: bytes, width: int, height: int) -> None:
    write_colour(drawable, [(Rect(0, 0, width, height), rgba)])


def write_colour(drawable: Gimp.Drawable, parts: Iterable[tuple[Rect, bytes]]) -> None:
    """RGBA u8 parts, as ``write_parts``; a grey drawable gets them made grey here
    (``flux_outpaint.greyscale``): babl's own conversion to grey rounds differently from
    one process to the next, and a recover must place the bytes the run placed."""
    if drawable.is_gray():
        write_parts(drawable, GREY, ((rect, greyscale.to_grey_alpha(data)) for rect, data in parts))
    else:
        write_parts(drawable, RGBA, parts)


def write_mask(mask: Gimp.LayerMask, data: bytes, width: int, height: int) -> None:
    write_parts(mask, MASK, [(Rect(0, 0, width, height), data)])


def write_parts(drawable: Gimp.Drawable, fmt: str, parts: Iterable[tuple[Rect, bytes]]) -> None:
    """Each ``(rect, bytes)`` into the drawable (its own coordinates), then one flush.

    ``parts`` may be a generator: each part is written before the next one is made.
    """
    buf = drawable.get_buffer()
    box = None
    for rect, data in parts:
        buf.set(Gegl.Rectangle.new(rect.x, rect.y, rect.width, rect.height), fmt, data)
        box = rect if box is None else box.union(rect)
    buf.flush()  # the core sees nothing until the plug-in's tile cache is flushed
    if box is not None:
        drawable.update(box.x, box.y, box.width, box.height)


def enlarger(
    rgba: bytes,
    width: int,
    height: int,
    size: tuple[int, int],
    overlay: Callable[[Rect], tuple[bytes, int] | None] | None = None,
) -> Callable[[Rect], bytes]:
    """``area -> RGBA u8 bytes``: any rectangle of the image scaled to ``size``.

    Pixels come out exactly as one scaling of the whole image would make them (the sample
    positions depend only on the scale and the integer offset), so rectangles fit together
    without a seam; only what is asked for is ever computed.  ``overlay(area)``: None or
    ``(RGBA u8 bytes of area, opacity)`` composited over each enlarged rectangle (the grain).
    """
    source = _pixbuf(rgba, width, height)
    sx, sy = size[0] / width, size[1] / height

    def pixels_of(area: Rect) -> bytes:
        dest = GdkPixbuf.Pixbuf.new(GdkPixbuf.Colorspace.RGB, True, 8, area.width, area.height)
        source.scale(dest, 0, 0, area.width, area.height, -area.x, -area.y, sx, sy, RESAMPLE)
        over = None if overlay is None else overlay(area)
        if over is not None:
            data, alpha = over
            _pixbuf(data, area.width, area.height).composite(
                dest, 0, 0, area.width, area.height, 0, 0, 1.0, 1.0, NEAREST, alpha
            )
        return _rgba_bytes(dest)

    return pixels_of


def _pixbuf(data: bytes, width: int, height: int, alpha: bool = True) -> GdkPixbuf.Pixbuf:
    channels = 4 if alpha else 3
    return GdkPixbuf.Pixbuf.new_from_bytes(
        GLib.Bytes.new(data), GdkPixbuf.Colorspace.RGB, alpha, 8, width, height, width * channels
    )


def encode(rgba: bytes, width: int, height: int, encoding: Encoding) -> bytes:
    """The reference as PNG or JPEG (an ``flux_outpaint.payload.Encoder``).

    Options are always explicit: GdkPixbuf's default PNG level is slow, its JPEG default
    is q75.  Runs in the worker thread; neither GdkPixbuf nor a GEGL buffer made here talks
    to GIMP.
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
    global _sent
    # GdkPixbuf first: with glycin (GdkPixbuf 2.44, GIMP 3.2) its JPEG is 4:4:4 and half the
    # cost of GEGL's (whose first use in a process initialises GEGL, about 0.1 s); where it
    # subsamples the chroma (2.42, GIMP 3.0) GEGL's saver writes it again, 4:4:4
    data = _jpeg_pixbuf(rgba, width, height, encoding.quality)
    try:
        subsampled = imageinfo.read_header(data).chroma_subsampled
    except ResultError:
        subsampled = True
    if subsampled:
        data = _jpeg_gegl(rgba, width, height, encoding.quality) or data
    _sent = (rgba, data)
    return data


def _jpeg_gegl(rgba: bytes, width: int, height: int, quality: int) -> bytes | None:
    """A 4:4:4 JPEG from ``gegl:jpg-save`` (it always writes 1×1 sampling); None where
    the operation is missing or fails.

    The payload asks for full-resolution chroma (``flux_outpaint.payload``), and GdkPixbuf
    2.42 (GIMP 3.0 on Debian trixie) has no option for it: its JPEG is 4:2:0, whose chroma
    smear along the seam doubled the seam metric of GIMP 3.0 against 3.2 (1.9 against 1.0
    under the local server's drift).  The saver writes only to a file: the JPEG passes
    through a temporary one.  The plug-in's GEGL has no operations until ``Gegl.init``
    (about 0.1 s, once)."""
    global _gegl_ready
    try:
        if not _gegl_ready:
            Gegl.init(None)
            _gegl_ready = True
        if not Gegl.has_operation("gegl:jpg-save"):
            return None
    except (GLib.Error, TypeError):
        return None
    try:  # no writable temporary folder: the fallback
        fd, path = tempfile.mkstemp(prefix="flux-outpaint-", suffix=".jpg")
        os.close(fd)
    except OSError:
        return None
    try:
        buf = Gegl.Buffer.new(RGBA, 0, 0, width, height)
        buf.set(Gegl.Rectangle.new(0, 0, width, height), RGBA, rgba)
        graph = Gegl.Node()
        source = graph.create_child("gegl:buffer-source")
        source.set_property("buffer", buf)
        save = graph.create_child("gegl:jpg-save")
        save.set_property("path", path)
        save.set_property("quality", quality)
        save.set_property("progressive", False)  # baseline, standard tables: the fastest
        save.set_property("optimize", False)
        source.link(save)
        save.process()
        with open(path, "rb") as f:
            data = f.read()
    except (GLib.Error, OSError, TypeError):
        return None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return data if data[:3] == b"\xff\xd8\xff" else None


_gegl_ready = False


def _jpeg_pixbuf(rgba: bytes, width: int, height: int, quality: int) -> bytes:
    """GdkPixbuf's JPEG: 4:4:4 from glycin (GdkPixbuf 2.44), 4:2:0 from older ones."""
    # JPEG has no alpha, and GdkPixbuf 2.44 (GIMP 3.2 on forky) turned an RGBA pixbuf into a
    # grey JPEG: hand it RGB.  The reference is opaque whenever JPEG is chosen.
    kept = _rgb_of
    if kept is not None and kept[0] is rgba:
        pb = kept[1]
    else:
        rgb = bytearray(width * height * 3)
        for channel in range(3):
            rgb[channel::3] = rgba[channel::4]
        pb = GdkPixbuf.Pixbuf.new_from_bytes(
            GLib.Bytes.new(bytes(rgb)), GdkPixbuf.Colorspace.RGB, False, 8, width, height, width * 3
        )
    ok, data = pb.save_to_bufferv("jpeg", ["quality"], [str(quality)])
    if not ok or not data:
        raise ResultError("Could not encode the reference as JPEG")
    return bytes(data)


# The last reference sent as JPEG, and that JPEG (made in the worker thread, read on the
# main thread once the worker is done); then its pixels as decoded, once asked for.
_sent: tuple[bytes, bytes] | None = None
_sent_pixels: tuple[bytes, bytes] | None = None


def as_sent(rgba: bytes) -> bytes:
    """The reference ``rgba`` as fal decodes it, for the colour match to measure the drift
    against what the model saw: ``rgba`` itself, unless it went as a JPEG whose chroma was
    subsampled; then that JPEG decoded.

    The JPEG is 4:4:4 from GEGL, but GdkPixbuf 2.42 (GIMP 3.0 on Debian trixie), the
    fallback, has no option for it: its JPEG is 4:2:0.  Measured against the pixels before
    encoding, 4:2:0's chroma error read as a varying drift (±1.8 levels on a photo at
    320×240) and changed the new pixels of a result without any drift by 0.7 levels on
    average.  A 4:4:4 JPEG's error is small and even: no decode."""
    global _sent_pixels
    sent, known = _sent, _sent_pixels
    if sent is None or sent[0] is not rgba:
        return rgba
    if known is not None and known[0] is rgba:
        return known[1]
    try:
        if not imageinfo.read_header(sent[1]).chroma_subsampled:
            return rgba
        decoded = decode(sent[1])[0]
    except ResultError:
        return rgba
    if len(decoded) != len(rgba):
        return rgba
    _sent_pixels = (rgba, decoded)
    return decoded


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


@overload
def _rgba_bytes(pb: GdkPixbuf.Pixbuf, with_size: Literal[False] = False) -> bytes: ...
@overload
def _rgba_bytes(pb: GdkPixbuf.Pixbuf, with_size: Literal[True]) -> tuple[bytes, int, int]: ...
def _rgba_bytes(pb: GdkPixbuf.Pixbuf, with_size: bool = False) -> bytes | tuple[bytes, int, int]:
    """A pixbuf's pixels as tightly packed RGBA u8 (optionally with its size)."""
    if not pb.get_has_alpha():
        # also normalises the rowstride to width*4 (3-channel rows may be padded)
        pb = pb.add_alpha(False, 0, 0, 0)
    width, height = pb.get_width(), pb.get_height()
    stride, row = pb.get_rowstride(), width * 4
    raw = pb.get_pixels()  # one copy (read_pixel_bytes().get_data() makes two)
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
