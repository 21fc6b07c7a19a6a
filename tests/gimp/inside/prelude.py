"""What the plug-in's batches share inside GIMP: test images, the plug-in called through the
PDB like any script would call it, and measurements made with GIMP's own calls only (the
chroots have no numpy or Pillow, like users' GIMPs).
"""

from __future__ import annotations

import hashlib
import os
import sys
import time

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp  # noqa: E402

PDB = Gimp.get_pdb()
RGBA = "R'G'B'A u8"
PRECISIONS = {
    "u8": Gimp.Precision.U8_NON_LINEAR,
    "u16": Gimp.Precision.U16_NON_LINEAR,
    "float": Gimp.Precision.FLOAT_LINEAR,
}
BASES = {
    "rgb": (Gimp.ImageBaseType.RGB, Gimp.ImageType.RGBA_IMAGE),
    "gray": (Gimp.ImageBaseType.GRAY, Gimp.ImageType.GRAYA_IMAGE),
}


def use_plugin_modules() -> None:
    """Make the installed plug-in's modules (gimp_glue, outpaint, vendor/) importable."""
    plug = os.path.join(os.environ["GIMP3_DIRECTORY"], "plug-ins", "flux-outpaint")
    sys.path[:0] = [os.path.join(plug, "vendor"), plug]


def pattern(w, h, box=None, seed=0):
    """Deterministic RGBA rows built with C-speed slicing; alpha 0 outside ``box``."""
    base = bytes(range(256)) * (w // 256 + 3)
    perm = bytes((i * 7 + 3 + seed) & 255 for i in range(256)) * (w // 256 + 3)
    rows = []
    for y in range(h):
        row = bytearray(w * 4)
        row[0::4] = base[(y + seed) % 256 : (y + seed) % 256 + w]
        row[1::4] = perm[(y * 3) % 256 : (y * 3) % 256 + w]
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
    rect = Gegl.Rectangle.new(x, y, w, h)
    return bytes(drawable.get_buffer().get(rect, 1.0, fmt, Gegl.AbyssPolicy.NONE))


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
    # INTERACTIVE is 0: compare with None, not by truth
    cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE if run_mode is None else run_mode)
    cfg.set_property("image", img)
    cfg.set_core_object_array("drawables", drawables)
    for key, value in args.items():
        cfg.set_property(key.replace("_", "-"), value)
    started = time.monotonic()
    result = procedure.run(cfg)
    status = result.index(0)
    value = result.index(1) if result.length() > 1 else None
    return {
        "ok": status == Gimp.PDBStatusType.SUCCESS,
        "status": status.value_nick,
        "layer": value if status == Gimp.PDBStatusType.SUCCESS else None,
        "message": value if isinstance(value, str) else None,
        "seconds": round(time.monotonic() - started, 3),
    }


def all_layers(img):
    out = []

    def walk(items):
        for item in items:
            out.append(item)
            if item.is_group():
                walk(item.get_children())

    walk(img.get_layers())
    return out


def _digest(drawable):
    return hashlib.sha256(read(drawable, fmt=None)).hexdigest()


def snapshot(img):
    """Everything 'the image unchanged' means: canvas, stack, offsets, pixels, masks."""
    state = {
        "size": [img.get_width(), img.get_height()],
        "selected": [x.get_name() for x in img.get_selected_layers()],
        "layers": [],
    }
    for layer in all_layers(img):
        _, x, y = layer.get_offsets()
        mask = layer.get_mask()
        digest = _digest(layer) if not layer.is_group() else None
        state["layers"].append(
            [
                layer.get_name(),
                x,
                y,
                layer.get_width(),
                layer.get_height(),
                digest,
                None if mask is None else _digest(mask),
            ]
        )
    return state


def describe(layer, img):
    _, x, y = layer.get_offsets()
    parent = layer.get_parent()
    return {
        "name": layer.get_name(),
        "x": x,
        "y": y,
        "w": layer.get_width(),
        "h": layer.get_height(),
        "type": layer.type().value_nick,
        "position": img.get_item_position(layer),
        "parent": None if parent is None else parent.get_name(),
        "has_mask": layer.get_mask() is not None,
    }


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
    return b"".join(
        data[(y + r) * width * 4 + x * 4 : (y + r) * width * 4 + (x + w) * 4] for r in range(h)
    )


def wait_for_file(path, timeout_s, what, poll_s=0.1):
    """Poll until ``path`` exists; raise (failing the batch) with ``what`` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: no {path} after {timeout_s} s")
        time.sleep(poll_s)
