"""Batch of test_plugin_color.py: one outpaint per case on a photo-like layer, with colour
matching on or off; the source layer's pixels and the visible result are written to the
session folder (raw RGBA u8) for the host to measure the seam with numpy.  A case with
``variations`` also writes each take's strip just past the right seam (``strip`` px wide)."""

from __future__ import annotations

import os

import gi
from prelude import composite, make_image, outpaint, read, use_plugin_modules, write
from reporting import report

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp  # noqa: E402


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
        _write_photo(layer, photo, lw, lh)
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
                # each recover is a new plug-in process: the same bytes every time
                placed = [read(c) for c in children] if children else [read(r["layer"])]
                tries = [
                    outpaint(img, [layer], proc="plug-in-flux-outpaint-recover")
                    for _ in range(int(case["recover"]))
                ]
                info["recover_ok"] = all(t["ok"] for t in tries)
                info["recovers"] = len(tries)
                if info["recover_ok"]:
                    info["recover_same"] = all(
                        (
                            [read(c) for c in t["layer"].get_children()]
                            if children
                            else [read(t["layer"])]
                        )
                        == placed
                        for t in tries
                    )
        out[name] = info
        img.delete()
    report(cases=out, gimp=Gimp.version())


def _write_photo(layer, photo, w, h):
    """The RGBA photo into the source layer; a grey layer gets it made grey by the plug-in's
    own arithmetic: babl's conversion rounds by the chain it timed in this process, and the
    grey cases' figures moved between GIMP starts with the source they were given."""
    if not layer.is_gray():
        write(layer, photo, w, h)
        return
    use_plugin_modules()
    from flux_outpaint import greyscale

    buf = layer.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), "Y'A u8", greyscale.to_grey_alpha(photo))
    buf.flush()
    layer.update(0, 0, w, h)


def codec(params):
    """The reference's JPEG as the plug-in makes it, and as GdkPixbuf alone would (the
    fallback); what ``pixels.as_sent`` gives the colour match for each.  Files for the host:
    ``fallback.jpg`` and ``fallback-as-sent.rgba``."""
    use_plugin_modules()
    from flux_outpaint import imageinfo
    from flux_outpaint.payload import Encoding
    from gimp_glue import pixels

    folder = params["session_dir"]
    w, h = params["size"]
    with open(os.path.join(folder, params["photo"]), "rb") as f:
        rgba = f.read()
    made = pixels.encode(rgba, w, h, Encoding("jpeg"))
    plain = pixels.as_sent(rgba) is rgba
    fallback = pixels._jpeg_pixbuf(rgba, w, h, Encoding("jpeg").quality)
    pixels._sent = (rgba, fallback)  # as if the fallback had made the sent JPEG
    seen = pixels.as_sent(rgba)
    for name, data in (("fallback.jpg", fallback), ("fallback-as-sent.rgba", seen)):
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
    # no writable temporary folder: GEGL's saver gives way (None), the run does not fail
    import tempfile

    kept, tempfile.tempdir = tempfile.tempdir, os.path.join(folder, "no-such-folder")
    try:
        without_tmp = pixels._jpeg_gegl(rgba, w, h, Encoding("jpeg").quality)
        sent_anyway = pixels.encode(rgba, w, h, Encoding("jpeg"))
    finally:
        tempfile.tempdir = kept
    report(
        gegl_without_tmp=without_tmp is None,
        sent_without_tmp=imageinfo.read_header(sent_anyway).content_type,
        made_subsampled=imageinfo.read_header(made).chroma_subsampled,
        made_as_sent_is_the_reference=plain,
        fallback_subsampled=imageinfo.read_header(fallback).chroma_subsampled,
        fallback_as_sent_is_the_reference=seen is rgba,
    )
