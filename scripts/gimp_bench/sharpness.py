"""Inside GIMP (python-fu-eval): the enlarged band and the shrunk reference, old way and new.

Run by ``scripts/bench_gimp.py --sharpness`` through GimpSession.run_batch (``SESSION_DIR``
and ``report`` given).  Reads ``sharpness.json`` from the session folder: the photos to use
and the cases (fal's output size, the placement rectangle, the band to compare).

* Enlarging: a mosaic of photographs at their own resolution stands for what fal returns
  (sharp, real texture).  The band is made by GIMP's Cubic on the whole picture (what the
  plug-in did before), by GIMP's Linear, and by the plug-in's own ``pixels.enlarger`` (what
  it does now).  The bands go to raw files; the host measures them.
* Shrinking: a 24 MP photograph with grain is shrunk to the request's size by GdkPixbuf's
  HYPER (before) and BILINEAR (now), and by GIMP's Linear for comparison.
"""

from __future__ import annotations

import json
import os
import sys
import time

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
gi.require_version("GdkPixbuf", "2.0")
from gi.repository import GdkPixbuf, Gegl, Gimp, Gio, GLib  # noqa: E402

SESSION = ""  # the session folder, set by main
RGBA = "R'G'B'A u8"
_plug = os.path.join(os.environ["GIMP3_DIRECTORY"], "plug-ins", "flux-outpaint")
sys.path[:0] = [os.path.join(_plug, "vendor"), _plug]
from flux_outpaint.geometry import Rect  # noqa: E402
from gimp_glue import pixels  # noqa: E402
from reporting import report  # noqa: E402


def load(path: str):
    img = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))
    layer = img.get_layers()[0]
    w, h = layer.get_width(), layer.get_height()
    data = layer.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, RGBA, Gegl.AbyssPolicy.CLAMP)
    img.delete()
    return bytes(data), w, h


def mosaic(photos: list[tuple[bytes, int, int]], width: int, height: int) -> bytes:
    rows = []
    for y in range(height):
        row = bytearray()
        k = (y // 211) % len(photos)
        while len(row) < width * 4:
            data, w, h = photos[k % len(photos)]
            yy = y % h
            row += data[yy * w * 4 : (yy + 1) * w * 4]
            k += 1
        rows.append(bytes(row[: width * 4]))
    return b"".join(rows)


def save(name: str, data: bytes) -> None:
    with open(os.path.join(SESSION, name + ".raw"), "wb") as out:
        out.write(data)


def core_scaled(data: bytes, w: int, h: int, size, interpolation, band) -> tuple[bytes, float]:
    img = Gimp.Image.new(w, h, Gimp.ImageBaseType.RGB)
    img.undo_disable()
    layer = Gimp.Layer.new(img, "r", w, h, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    img.insert_layer(layer, None, 0)
    buf = layer.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), RGBA, data)
    buf.flush()
    started = time.perf_counter()
    Gimp.context_push()
    Gimp.context_set_interpolation(interpolation)
    layer.scale(size[0], size[1], False)
    Gimp.context_pop()
    seconds = time.perf_counter() - started
    x, y, bw, bh = band
    out = layer.get_buffer().get(Gegl.Rectangle.new(x, y, bw, bh), 1.0, RGBA, Gegl.AbyssPolicy.NONE)
    img.delete()
    return bytes(out), seconds


def enlarge_cases(config: dict) -> dict:
    photos = [load(p) for p in config["photos"]]
    out = {}
    for case in config["enlarge"]:
        name, (w, h), size, band = case["name"], case["result"], case["rect"], case["band"]
        data = mosaic(photos, w, h)
        times = {}
        for label, interpolation in (
            ("cubic", Gimp.InterpolationType.CUBIC),
            ("linear", Gimp.InterpolationType.LINEAR),
        ):
            pixels_band, seconds = core_scaled(data, w, h, size, interpolation, band)
            save(f"{name}-{label}", pixels_band)
            times[label] = round(seconds, 3)
        started = time.perf_counter()
        pixels_of = pixels.enlarger(data, w, h, tuple(size))
        ours = b"".join(
            part
            for _, part in pixels.in_parallel(pixels_of, Rect(*band).bands(pixels.CHUNK_PIXELS))
        )
        times["ours"] = round(time.perf_counter() - started, 3)
        save(f"{name}-ours", ours)
        out[name] = {"seconds": times}
    return out


def shrink_case(config: dict) -> dict:
    case = config["shrink"]
    w, h = case["layer"]
    size = tuple(case["size"])
    img = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(config["photos"][0]))
    layer = img.get_layers()[0]
    Gimp.context_push()
    Gimp.context_set_interpolation(Gimp.InterpolationType.LINEAR)
    layer.scale(w, h, False)
    Gimp.context_pop()
    noise = Gimp.DrawableFilter.new(layer, "gegl:noise-rgb", "")
    cfg = noise.get_config()
    for channel in ("red", "green", "blue"):
        cfg.set_property(channel, 0.04)
    cfg.set_property("gaussian", True)
    cfg.set_property("seed", 7)
    layer.merge_filter(noise)
    data, alpha = pixels.read_pixels(layer, Rect(0, 0, w, h))
    img.delete()
    save("shrink-source", data if alpha else _rgba(data, w, h))
    times = {}
    pb = GdkPixbuf.Pixbuf.new_from_bytes(
        GLib.Bytes.new(data), GdkPixbuf.Colorspace.RGB, alpha, 8, w, h, w * (4 if alpha else 3)
    )
    started = time.perf_counter()
    hyper = pb.scale_simple(size[0], size[1], GdkPixbuf.InterpType.HYPER)
    times["hyper"] = round(time.perf_counter() - started, 3)
    save("shrink-hyper", pixels._rgba_bytes(hyper))
    started = time.perf_counter()
    save("shrink-ours", pixels.shrink(data, w, h, alpha, size))
    times["ours"] = round(time.perf_counter() - started, 3)
    return {"seconds": times, "layer": [w, h], "size": list(size)}


def _rgba(rgb: bytes, w: int, h: int) -> bytes:
    out = bytearray(w * h * 4)
    out[3::4] = b"\xff" * (w * h)
    for c in range(3):
        out[c::4] = rgb[c::3]
    return bytes(out)


def main(params: dict) -> None:
    global SESSION
    SESSION = params["session_dir"]
    with open(os.path.join(SESSION, "sharpness.json"), encoding="utf-8") as f:
        config = json.load(f)
    report(enlarge=enlarge_cases(config), shrink=shrink_case(config))
