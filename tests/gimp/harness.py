"""Shared pieces of the plug-in's real-GIMP tests (no tests of its own, hence not test_*).

``PRELUDE`` runs inside GIMP (python-fu-eval, via ``GimpSession.run_batch``): it builds test
images, calls the plug-in through the PDB like any script would, and measures results with
GIMP's own calls only (the chroots have no numpy or Pillow, like users' GIMPs).  The host
side starts the local fal server and holds expectations computed independently of the glue.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import fal_local

from .sandbox import BatchResult, GimpSession

# A key that is easy to grep for: it must never show up in GIMP's files or in messages.
KEY = "flux-test-key-7f3a9c-SECRET"
PLUGIN_DIR_CODE = """
import os, sys
_plug = os.path.join(os.environ["GIMP3_DIRECTORY"], "plug-ins", "flux-outpaint")
sys.path[:0] = [os.path.join(_plug, "vendor"), _plug]
"""

PRELUDE = r'''
import hashlib
import json
import time

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GObject  # noqa: E402,F401

PDB = Gimp.get_pdb()
RGBA = "R'G'B'A u8"
PRECISIONS = {"u8": Gimp.Precision.U8_NON_LINEAR, "u16": Gimp.Precision.U16_NON_LINEAR,
              "float": Gimp.Precision.FLOAT_LINEAR}
BASES = {"rgb": (Gimp.ImageBaseType.RGB, Gimp.ImageType.RGBA_IMAGE),
         "gray": (Gimp.ImageBaseType.GRAY, Gimp.ImageType.GRAYA_IMAGE)}


def emit(name, value):
    print("@@RESULT " + json.dumps({name: value}), flush=True)


def pattern(w, h, box=None, seed=0):
    """Deterministic RGBA rows built with C-speed slicing; alpha 0 outside ``box``."""
    base = bytes(range(256)) * (w // 256 + 3)
    perm = bytes((i * 7 + 3 + seed) & 255 for i in range(256)) * (w // 256 + 3)
    rows = []
    for y in range(h):
        row = bytearray(w * 4)
        row[0::4] = base[(y + seed) % 256:(y + seed) % 256 + w]
        row[1::4] = perm[(y * 3) % 256:(y * 3) % 256 + w]
        row[2::4] = bytes([(y * 11 + seed) & 255]) * w
        if box is None:
            row[3::4] = b"\xff" * w
        elif box[1] <= y < box[1] + box[3]:
            row[3::4] = bytes(box[0]) + b"\xff" * box[2] + bytes(w - box[0] - box[2])
        rows.append(bytes(row))
    return b"".join(rows)


def write(drawable, data, w, h):
    buf = drawable.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), RGBA, data)
    buf.flush()
    drawable.update(0, 0, w, h)


def read(drawable, x=0, y=0, w=None, h=None, fmt=RGBA):
    w = drawable.get_width() if w is None else w
    h = drawable.get_height() if h is None else h
    return bytes(drawable.get_buffer().get(Gegl.Rectangle.new(x, y, w, h), 1.0, fmt,
                                           Gegl.AbyssPolicy.NONE))


def make_image(cw, ch, lx, ly, lw, lh, base="rgb", precision="u8", box=None, name="Source"):
    kind, layer_type = BASES[base]
    img = Gimp.Image.new_with_precision(cw, ch, kind, PRECISIONS[precision])
    layer = Gimp.Layer.new(img, name, lw, lh, layer_type, 100.0, Gimp.LayerMode.NORMAL)
    img.insert_layer(layer, None, 0)
    layer.set_offsets(lx, ly)
    write(layer, pattern(lw, lh, box), lw, lh)
    return img, layer


def outpaint(img, drawables, proc="plug-in-flux-outpaint", run_mode=None, **args):
    procedure = PDB.lookup_procedure(proc)
    cfg = procedure.create_config()
    cfg.set_property("run-mode", run_mode or Gimp.RunMode.NONINTERACTIVE)
    cfg.set_property("image", img)
    cfg.set_core_object_array("drawables", drawables)
    for key, value in args.items():
        cfg.set_property(key.replace("_", "-"), value)
    started = time.monotonic()
    result = procedure.run(cfg)
    status = result.index(0)
    value = result.index(1) if result.length() > 1 else None
    return {"ok": status == Gimp.PDBStatusType.SUCCESS, "status": status.value_nick,
            "layer": value if status == Gimp.PDBStatusType.SUCCESS else None,
            "message": value if isinstance(value, str) else None,
            "seconds": round(time.monotonic() - started, 3)}


def all_layers(img):
    out = []

    def walk(items):
        for item in items:
            out.append(item)
            if item.is_group():
                walk(item.get_children())
    walk(img.get_layers())
    return out


def snapshot(img):
    """Everything 'the image unchanged' means: canvas, stack, offsets, pixels, masks."""
    state = {"size": [img.get_width(), img.get_height()],
             "selected": [x.get_name() for x in img.get_selected_layers()], "layers": []}
    for layer in all_layers(img):
        _, x, y = layer.get_offsets()
        mask = layer.get_mask()
        digest = hashlib.sha256(read(layer, fmt=None)).hexdigest() if not layer.is_group() \
            else None
        state["layers"].append([layer.get_name(), x, y, layer.get_width(), layer.get_height(),
                                digest, None if mask is None else
                                hashlib.sha256(read(mask, fmt=None)).hexdigest()])
    return state


def describe(layer, img):
    _, x, y = layer.get_offsets()
    parent = layer.get_parent()
    return {"name": layer.get_name(), "x": x, "y": y, "w": layer.get_width(),
            "h": layer.get_height(), "type": layer.type().value_nick,
            "position": img.get_item_position(layer),
            "parent": None if parent is None else parent.get_name(),
            "has_mask": layer.get_mask() is not None}


def composite(img):
    """The visible result, canvas-sized RGBA u8 (the image itself is untouched)."""
    dup = img.duplicate()
    merged = dup.merge_visible_layers(Gimp.MergeType.CLIP_TO_IMAGE)
    _, x, y = merged.get_offsets()
    data = read(merged, -x, -y, dup.get_width(), dup.get_height())
    dup.delete()
    return data


def rle(values):
    out = []
    for v in values:
        if out and out[-1][0] == v:
            out[-1][1] += 1
        else:
            out.append([v, 1])
    return out


def region(data, width, rect):
    """Rows of ``rect`` (x, y, w, h) cut from canvas-wide RGBA bytes."""
    x, y, w, h = rect
    return b"".join(data[(y + r) * width * 4 + x * 4:(y + r) * width * 4 + (x + w) * 4]
                    for r in range(h))
'''


# Full GIMP (not the console) runs python-fu-eval code from a file through this wrapper, so
# that a report and any traceback come back in a JSON file the host reads afterwards.
RUNNER = r"""
import json, traceback
state = {"report": {}, "error": None}
def report(**values):
    state["report"].update(values)
try:
    exec(compile(open("@CODE@").read(), "@CODE@", "exec"), {"report": report})
except BaseException:
    state["error"] = traceback.format_exc()
finally:
    json.dump(state, open("@RESULT@", "w"), default=repr)
"""


@contextlib.contextmanager
def local_server(**options) -> Iterator[fal_local.LocalServer]:
    server = fal_local.start_server(keys=[KEY], **options)
    try:
        yield server
    finally:
        server.stop()


def server_env(server, key: str | None = KEY, **extra: str) -> dict[str, str]:
    env = {"FAL_QUEUE_URL": server.base_url if server is not None else "http://127.0.0.1:9"}
    if key is not None:
        env["FAL_KEY"] = key
    return {**env, **extra}


def run(gimp: GimpSession, body: str, env: dict[str, str], timeout: float = 600) -> dict:
    result: BatchResult = gimp.run_batch(PRELUDE + "\n" + body, env=env, timeout=timeout)
    return result.check()


def ramp(blend: int) -> list[int]:
    # Independent of outpaint.seam on purpose: the documented mask profile, recomputed.
    return [round(255 * (blend - d) / (blend + 1)) for d in range(blend)]


def expected_line(
    length: int, start: int, size: int, low: bool, high: bool, blend: int
) -> list[int]:
    line = [255] * length
    for i in range(max(0, start), min(length, start + size)):
        d_low, d_high = i - start, start + size - 1 - i
        value = 0
        if low and d_low < blend:
            value = max(value, ramp(blend)[d_low])
        if high and d_high < blend:
            value = max(value, ramp(blend)[d_high])
        line[i] = value
    return line


def rle(values: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for v in values:
        if out and out[-1][0] == v:
            out[-1][1] += 1
        else:
            out.append([v, 1])
    return out


def files_containing(folder: Path, needle: str) -> list[str]:
    hits = []
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file() and not path.is_symlink() and needle.encode() in path.read_bytes():
                hits.append(str(path.relative_to(folder)))
    return hits


def one_line(message: object) -> bool:
    return isinstance(message, str) and bool(message.strip()) and "\n" not in message


def words(message: str) -> str:
    return re.sub(r"\s+", " ", message.lower())


__all__ = [
    "KEY",
    "PLUGIN_DIR_CODE",
    "PRELUDE",
    "RUNNER",
    "expected_line",
    "files_containing",
    "local_server",
    "one_line",
    "rle",
    "run",
    "server_env",
    "words",
]
