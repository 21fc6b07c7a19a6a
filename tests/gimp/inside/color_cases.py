"""Batch of test_plugin_color.py: one outpaint per case on a photo-like layer, with colour
matching on or off; the source layer's pixels and the visible result are written to the
session folder (raw RGBA u8) for the host to measure the seam with numpy.  A case with
``variations`` also writes each take's strip just past the right seam (``strip`` px wide)."""

from __future__ import annotations

import os

import gi
from prelude import composite, make_image, outpaint, read, write
from reporting import report

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402


def main(params):
    folder = params["session_dir"]
    photos = {}
    out = {}
    for case in params["cases"]:
        name = case["name"]
        source = case.get("photo", params.get("photo"))
        if source not in photos:
            with open(os.path.join(folder, source), "rb") as f:
                photos = {source: f.read()}  # one photo in memory at a time
        photo = photos[source]
        lw, lh = case.get("size", params.get("size"))
        left, right, top, bottom = case.get("grow", params.get("grow"))
        cw, ch = lw + left + right, lh + top + bottom
        img, layer = make_image(cw, ch, left, top, lw, lh, case["base"], case["precision"])
        write(layer, photo, lw, lh)
        original = read(layer)
        takes = {"variations": case["variations"]} if case.get("variations") else {}
        r = outpaint(
            img,
            [layer],
            color_match=case["color_match"],
            grain_match=case.get("grain_match", True),
            seam_blend=params["blend"],
            **takes,
        )
        info = {"ok": r["ok"], "message": r["message"], "seconds": r["seconds"]}
        if r["ok"]:
            info["canvas"] = [img.get_width(), img.get_height()]
            info["size"] = [lw, lh]
            info["precision"] = img.get_precision().value_nick
            info["source_unchanged"] = read(layer) == original
            for part, data in (("original", original), ("result", composite(img))):
                with open(os.path.join(folder, f"{name}-{part}.rgba"), "wb") as f:
                    f.write(data)
            children = list(r["layer"].get_children()) if r["layer"].is_group() else []
            info["takes"] = len(children)
            for n, child in enumerate(children, 1):
                # each take's own band (only the first is visible): the strip past the seam
                _, x, y = child.get_offsets()
                strip = read(child, left + lw - x, top - y, params["strip"], lh)
                with open(os.path.join(folder, f"{name}-take{n}.rgba"), "wb") as f:
                    f.write(strip)
            if case.get("recover"):
                again = outpaint(img, [layer], proc="plug-in-flux-outpaint-recover")
                info["recover_ok"] = again["ok"]
                if again["ok"] and children:
                    back = list(again["layer"].get_children())
                    info["recover_same"] = [read(c) for c in back] == [read(c) for c in children]
                elif again["ok"]:
                    info["recover_same"] = read(again["layer"]) == read(r["layer"])
        out[name] = info
        img.delete()
    report(cases=out, gimp=Gimp.version())
