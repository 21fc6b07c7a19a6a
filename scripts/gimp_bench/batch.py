"""Inside GIMP (python-fu-eval): the benchmark's images and timed calls of the plug-in.

Run by scripts/bench_gimp.py through GimpSession.run_batch (copied in beside the tests'
batches as ``bench_batch``, so ``reporting`` is at hand).  Reads ``bench-config.json`` from
the session folder; for each size builds one image (a photo scaled to the layer size plus a
little seeded RGB noise, like a camera's grain, on a larger canvas), then calls the plug-in
through the PDB ``repeat`` times, removing the new layer after each call so every call sees
the same image.
The wall of each call is taken here; the step times come from the timer that
``sitecustomize.py`` loads into the plug-in's process (one JSON line per call).
"""

from __future__ import annotations

import json
import os
import time

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gimp, Gio  # noqa: E402
from reporting import report  # noqa: E402

PROCEDURE = "plug-in-flux-outpaint"
NOISE = 0.04  # gaussian RGB noise, standard deviation on 0..1


def _log_lines(path: str) -> list[dict]:
    """The timer's records, each with the time its process let go (if it noted one)."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as lines:
        records = [json.loads(line) for line in lines if line.strip()]
    out: list[dict] = []
    for record in records:
        if "exiting" in record:
            if out:
                out[-1]["exiting"] = record["exiting"]
        else:
            out.append(record)
    return out


def make_image(photo: str, canvas: list[int], rect: list[int]):
    cw, ch = canvas
    x, y, w, h = rect
    loaded = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(photo))
    img = Gimp.Image.new(cw, ch, Gimp.ImageBaseType.RGB)
    layer = Gimp.Layer.new_from_drawable(loaded.get_layers()[0], img)
    loaded.delete()
    img.insert_layer(layer, None, 0)
    layer.set_name("Photo")
    Gimp.context_push()
    Gimp.context_set_interpolation(Gimp.InterpolationType.LINEAR)
    layer.scale(w, h, False)
    Gimp.context_pop()
    noise = Gimp.DrawableFilter.new(layer, "gegl:noise-rgb", "")
    config = noise.get_config()
    for channel in ("red", "green", "blue"):
        config.set_property(channel, NOISE)
    config.set_property("gaussian", True)
    config.set_property("seed", 7)
    layer.merge_filter(noise)
    layer.set_offsets(x, y)
    img.clean_all()
    return img, layer


def call(img, layer) -> tuple[float, float, object, str | None]:
    procedure = Gimp.get_pdb().lookup_procedure(PROCEDURE)
    cfg = procedure.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    cfg.set_property("image", img)
    cfg.set_core_object_array("drawables", [layer])
    called = time.time()
    result = procedure.run(cfg)
    returned = time.time()
    ok = result.index(0) == Gimp.PDBStatusType.SUCCESS
    value = result.index(1) if result.length() > 1 else None
    return called, returned, value if ok else None, None if ok else str(value)


def main(params: dict) -> None:
    with open(os.path.join(params["session_dir"], "bench-config.json"), encoding="utf-8") as f:
        config = json.load(f)
    log = config["log"]
    for size in config["sizes"]:
        img, layer = make_image(config["photo"], size["canvas"], size["layer"])
        runs = []
        for _ in range(config["repeat"]):
            seen = len(_log_lines(log))
            called, returned, new, error = call(img, layer)
            lines = _log_lines(log)
            step = lines[seen] if len(lines) > seen else None
            runs.append({"called": called, "returned": returned, "error": error, "plugin": step})
            if new is not None:
                img.remove_layer(new)
            if error is not None:
                break
        img.delete()
        report(**{size["name"]: runs})
