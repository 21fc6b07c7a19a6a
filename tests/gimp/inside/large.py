"""Batch of test_plugin_large.py: camera-size canvases, placed by the plug-in and measured.

``main``: each case in ``params["cases"]`` builds an image, calls the plug-in through the PDB
and measures the result with GIMP's own calls: rectangles, the mask over the original's
interior and along lines through it, the result layer's alpha, the visible composite against
the original, and the enlarged band against one GdkPixbuf enlargement of the image fal
returned.  Then GdkPixbuf's and GIMP's enlargement of one small picture are compared (pixel
alignment), and the plug-in's banded shrinking against one scaling.

``undo`` (full GIMP): one case in a displayed image; after the run it waits for the driver's
one Ctrl+Z (inside/undo_driver.py), then reports the image as that press left it.

The host computed every rectangle from the core's plan, so nothing here decides where things
should be.
"""

from __future__ import annotations

import glob
import hashlib
import os
import time

import gi
from prelude import use_plugin_modules
from reporting import report
from undo_run import undo_once

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
gi.require_version("GdkPixbuf", "2.0")
from gi.repository import GdkPixbuf, Gegl, Gimp, GLib  # noqa: E402

RGBA, RGB, MASK = "R'G'B'A u8", "R'G'B' u8", "Y u8"


def triangle(period: int) -> bytes:
    half = period // 2
    return bytes(round(255 * min(i, period - i) / half) for i in range(period))


def smooth(w: int, h: int, channels: int) -> bytes:
    """Smooth deterministic colour waves (a picture that survives fal's 4 MP round trip)."""
    red = triangle(512) * (w // 512 + 3)
    green = triangle(384) * (w // 384 + 3)
    blue = triangle(640)
    rows = []
    for y in range(h):
        row = bytearray(w * channels)
        row[0::channels] = red[y % 512 : y % 512 + w]
        row[1::channels] = green[(3 * y) % 384 : (3 * y) % 384 + w]
        row[2::channels] = bytes([blue[y % 640]]) * w
        if channels == 4:
            row[3::channels] = b"\xff" * w
        rows.append(bytes(row))
    return b"".join(rows)


def read(drawable, rect=None, fmt=RGBA) -> bytes:
    x, y, w, h = rect or (0, 0, drawable.get_width(), drawable.get_height())
    buf = drawable.get_buffer()
    return bytes(buf.get(Gegl.Rectangle.new(x, y, w, h), 1.0, fmt, Gegl.AbyssPolicy.NONE))


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_image(case: dict):
    cw, ch = case["canvas"]
    lx, ly, lw, lh = case["layer"]
    img = Gimp.Image.new(cw, ch, Gimp.ImageBaseType.RGB)
    alpha = case["alpha"]
    kind = Gimp.ImageType.RGBA_IMAGE if alpha else Gimp.ImageType.RGB_IMAGE
    layer = Gimp.Layer.new(img, "Source", lw, lh, kind, 100.0, Gimp.LayerMode.NORMAL)
    img.insert_layer(layer, None, 0)
    layer.set_offsets(lx, ly)
    buf = layer.get_buffer()
    buf.set(
        Gegl.Rectangle.new(0, 0, lw, lh), RGBA if alpha else RGB, smooth(lw, lh, 4 if alpha else 3)
    )
    buf.flush()
    layer.update(0, 0, lw, lh)
    img.set_selected_layers([layer])
    return img, layer


def outpaint(img, layer, args: dict) -> dict:
    procedure = Gimp.get_pdb().lookup_procedure("plug-in-flux-outpaint")
    cfg = procedure.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    cfg.set_property("image", img)
    cfg.set_core_object_array("drawables", [layer])
    for key, value in args.items():
        cfg.set_property(key.replace("_", "-"), value)
    started = time.monotonic()
    result = procedure.run(cfg)
    ok = result.index(0) == Gimp.PDBStatusType.SUCCESS
    value = result.index(1) if result.length() > 1 else None
    return {
        "ok": ok,
        "layer": value if ok else None,
        "message": None if ok else str(value),
        "seconds": round(time.monotonic() - started, 2),
    }


def snapshot(img) -> dict:
    state = {"size": [img.get_width(), img.get_height()], "layers": []}
    for layer in img.get_layers():
        _, x, y = layer.get_offsets()
        mask = layer.get_mask()
        state["layers"].append(
            [
                layer.get_name(),
                x,
                y,
                layer.get_width(),
                layer.get_height(),
                digest(read(layer, fmt=None)),
                None if mask is None else digest(read(mask, fmt=None)),
            ]
        )
    return state


def rle(values) -> list[list[int]]:
    out: list[list[int]] = []
    for v in values:
        if out and out[-1][0] == v:
            out[-1][1] += 1
        else:
            out.append([v, 1])
    return out


def rows_of(data: bytes, width: int, rect, channels: int) -> bytes:
    """``rect`` (x, y, w, h) cut out of ``width``-wide pixel bytes."""
    x, y, w, h = rect
    stride = width * channels
    return b"".join(
        data[(y + r) * stride + x * channels : (y + r) * stride + (x + w) * channels]
        for r in range(h)
    )


def returned_image() -> GdkPixbuf.Pixbuf:
    """The image fal returned, from the plug-in's result cache (the newest file)."""
    home = os.path.expanduser("~/.local/share/flux-outpaint/results/*")
    newest = max(glob.glob(home), key=os.path.getmtime)
    loader = GdkPixbuf.PixbufLoader()
    with open(newest, "rb") as blob:
        loader.write(blob.read())
    loader.close()
    pb = loader.get_pixbuf()
    return pb if pb.get_has_alpha() else pb.add_alpha(False, 0, 0, 0)


def pixbuf_rect(pb, rect) -> bytes:
    x, y, w, h = rect
    part = pb.new_subpixbuf(x, y, w, h).copy()
    stride, row = part.get_rowstride(), w * 4
    raw = part.read_pixel_bytes().get_data()
    return b"".join(raw[r * stride : r * stride + row] for r in range(h))


def check_case(case: dict) -> dict:
    img, layer = make_image(case)
    before = snapshot(img)
    src_rgb = read(layer, fmt=RGB)
    lw = layer.get_width()
    r = outpaint(img, layer, case["args"])
    info = {"ok": r["ok"], "message": r["message"], "seconds": r["seconds"]}
    if not r["ok"]:
        info["unchanged"] = snapshot(img) == before
        img.delete()
        return info
    new = r["layer"]
    _, nx, ny = new.get_offsets()
    _, sx, sy = layer.get_offsets()
    nw, nh = new.get_width(), new.get_height()
    info.update(
        rect=[nx, ny, nw, nh],
        canvas=[img.get_width(), img.get_height()],
        layers=[x.get_name() for x in img.get_layers()],
        type=new.type().value_nick,
        src_offsets=[sx, sy],
        src_unchanged=read(layer, fmt=RGB) == src_rgb,
        selected=[x.get_name() for x in img.get_selected_layers()],
    )
    mask = new.get_mask()
    info["has_mask"] = mask is not None
    # the mask over the original's interior: every byte 0
    hidden = read(mask, tuple(case["hidden"]), MASK)
    info["interior_mask_nonzero"] = len(hidden) - hidden.count(0)
    row_y, col_x = case["lines"]
    info["mask_row"] = rle(read(mask, (0, row_y, nw, 1), MASK))
    info["mask_col"] = rle(read(mask, (col_x, 0, 1, nh), MASK))
    # the result layer: opaque wherever the mask shows it, transparent deep inside
    info["band_alpha_not_255"] = 0
    returned = returned_image()
    expected = returned.scale_simple(nw, nh, GdkPixbuf.InterpType.BILINEAR)
    info["band_equal_one_enlargement"] = True
    for part in case["filled"]:
        got = read(new, tuple(part))
        alpha = got[3::4]
        info["band_alpha_not_255"] += len(alpha) - alpha.count(255)
        if got != pixbuf_rect(expected, part):
            info["band_equal_one_enlargement"] = False
    del expected
    deep = read(new, tuple(case["transparent"]))[3::4]
    info["interior_alpha_not_0"] = len(deep) - deep.count(0)
    # what shows: the original exactly over its interior
    dup = img.duplicate()
    merged = dup.merge_visible_layers(Gimp.MergeType.CLIP_TO_IMAGE)
    _, mx, my = merged.get_offsets()
    ix, iy, iw, ih = case["inner"]
    shown = read(merged, (ix - mx, iy - my, iw, ih), RGB)
    info["corner_alpha"] = read(merged, (-mx, -my, 1, 1))[3]
    dup.delete()
    info["exact"] = digest(shown) == digest(rows_of(src_rgb, lw, (ix - sx, iy - sy, iw, ih), 3))
    # the seam margin carries what fal returned, which is the original sent at 1/3
    ex, ey, ew, eh = case["echo"]
    got = read(new, (ex - nx, ey - ny, ew, eh), RGB)
    want = rows_of(src_rgb, lw, (ex - sx, ey - sy, ew, eh), 3)
    info["echo_diff"] = sum(abs(a - b) for a, b in zip(got, want, strict=True)) / len(got)
    img.delete()
    return info


def alignment() -> dict:
    """GdkPixbuf's enlargement lands on GIMP's pixel grid: compare it with GIMP's Linear
    under shifts of one pixel; the unshifted comparison must be the closest.  (Close, not
    equal: GdkPixbuf works in fixed point with 1/16-pixel sample positions, GEGL in floats.)
    """
    w, h, big_w, big_h = 300, 200, 900, 600
    red, green, blue = triangle(16) * 40, triangle(12) * 40, triangle(20) * 40
    rows = []
    for y in range(h):
        row = bytearray(w * 4)
        row[0::4] = red[:w]
        row[1::4] = bytes([green[y % 12]]) * w
        row[2::4] = blue[y % 20 : y % 20 + w]
        row[3::4] = b"\xff" * w
        rows.append(bytes(row))
    data = b"".join(rows)
    pb = GdkPixbuf.Pixbuf.new_from_bytes(
        GLib.Bytes.new(data), GdkPixbuf.Colorspace.RGB, True, 8, w, h, w * 4
    )
    ours = pixbuf_rect(
        pb.scale_simple(big_w, big_h, GdkPixbuf.InterpType.BILINEAR), (0, 0, big_w, big_h)
    )
    img = Gimp.Image.new(w, h, Gimp.ImageBaseType.RGB)
    layer = Gimp.Layer.new(img, "x", w, h, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    img.insert_layer(layer, None, 0)
    buf = layer.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), RGBA, data)
    buf.flush()
    Gimp.context_push()
    Gimp.context_set_interpolation(Gimp.InterpolationType.LINEAR)
    layer.scale(big_w, big_h, False)
    Gimp.context_pop()
    gimps = read(layer)
    img.delete()

    def diff(dx: int, dy: int) -> float:
        a = rows_of(ours, big_w, (8 + dx, 8 + dy, big_w - 16, big_h - 16), 4)
        b = rows_of(gimps, big_w, (8, 8, big_w - 16, big_h - 16), 4)
        return sum(abs(p - q) for p, q in zip(a, b, strict=True)) / len(a)

    return {f"{dx},{dy}": diff(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)}


def bands_match_one_scaling() -> dict:
    """The plug-in's own shrinking (bands of rows on several threads) against GdkPixbuf's
    one-call scaling of the same picture: byte for byte."""
    use_plugin_modules()
    from gimp_glue import pixels

    w, h, size = 1000, 700, (347, 243)
    data = bytearray(smooth(w, h, 3))
    data[::29] = b"\xff" * len(data[::29])  # fine detail that any misplaced row would show
    data = bytes(data)
    ours = pixels.shrink(data, w, h, False, size)
    pb = GdkPixbuf.Pixbuf.new_from_bytes(
        GLib.Bytes.new(data), GdkPixbuf.Colorspace.RGB, False, 8, w, h, w * 3
    )
    one = pb.scale_simple(*size, GdkPixbuf.InterpType.BILINEAR).add_alpha(False, 0, 0, 0)
    # the JPEG made from the RGB picture kept aside is the one made from the RGBA bytes
    from flux_outpaint.payload import Encoding

    kept = pixels.encode(ours, *size, Encoding("jpeg"))
    again = pixels.encode(bytes(bytearray(ours)), *size, Encoding("jpeg"))
    return {
        "threads": pixels.THREADS,
        "equal": ours == pixbuf_rect(one, (0, 0, *size)),
        "same_jpeg": kept == again and kept[:2] == b"\xff\xd8",
    }


def main(params) -> None:
    for case in params["cases"]:
        report(**{case["name"]: check_case(case)})
    report(alignment=alignment(), bands=bands_match_one_scaling())


def undo(params) -> None:
    img, layer = make_image(params["case"])
    undo_once(params, img, lambda: outpaint(img, layer, params["case"]["args"]), snapshot)
