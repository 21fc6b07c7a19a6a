"""Batches of test_plugin_outpaint.py: every placement case and the refusals in one GIMP
start (``main``), and a text layer (``text_layer``, which needs fonts loaded)."""

from __future__ import annotations

import glob
import os

import gi
from prelude import (
    BASES,
    all_layers,
    composite,
    describe,
    make_image,
    outpaint,
    read,
    region,
    rle,
    snapshot,
)
from reporting import report

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402


def case(
    name,
    canvas,
    layer_rect,
    args=None,
    base="rgb",
    precision="u8",
    box=None,
    group=False,
    use_mask=False,
    inner=None,
    line_y=None,
    line_x=None,
    recover=False,
):
    cw, ch = canvas
    lx, ly, lw, lh = layer_rect
    img, layer = make_image(cw, ch, lx, ly, lw, lh, base, precision, box)
    if group:
        grp = Gimp.GroupLayer.new(img, "Group")
        img.insert_layer(grp, None, 0)
        img.reorder_item(layer, grp, 0)
        above = Gimp.Layer.new(img, "Above", 8, 8, BASES[base][1], 100.0, Gimp.LayerMode.NORMAL)
        img.insert_layer(above, grp, 0)
    drawable = layer
    if use_mask:
        mask = layer.create_mask(Gimp.AddMaskType.WHITE)
        layer.add_mask(mask)
        drawable = mask
    img.set_selected_layers([layer])
    before = snapshot(img)
    src_pixels = read(layer)
    info = {
        "position_before": img.get_item_position(layer),
        "precision": img.get_precision().value_nick,
    }
    r = outpaint(img, [drawable], **(args or {}))
    info.update(ok=r["ok"], status=r["status"], message=r["message"], seconds=r["seconds"])
    if not r["ok"]:
        info["unchanged"] = snapshot(img) == before
        report(**{name: info})
        img.delete()
        return
    new = r["layer"]
    _, sx, sy = layer.get_offsets()
    info.update(
        new=describe(new, img),
        src=describe(layer, img),
        src_offsets=[sx, sy],
        canvas=[img.get_width(), img.get_height()],
        layers=len(all_layers(img)),
        src_unchanged=read(layer) == src_pixels,
        selected=[x.get_name() for x in img.get_selected_layers()],
        src_has_mask=layer.get_mask() is not None,
    )
    mask = read(new.get_mask(), fmt="Y u8")
    nw = new.get_width()
    if line_y is not None:
        info["mask_row"] = rle(list(mask[line_y * nw : (line_y + 1) * nw]))
    if line_x is not None:
        info["mask_col"] = rle(list(mask[line_x::nw]))
    comp = composite(img)
    info["corner_alpha"] = comp[3]
    if inner is not None:
        ix, iy, iw, ih = inner
        src_inner = region(src_pixels, lw, (ix - sx, iy - sy, iw, ih))
        info["exact"] = region(comp, img.get_width(), inner) == src_inner
        # The local server returns the reference itself there: what was sent, as GIMP got it back
        # (mean RGB difference; q95 JPEG of this noisy pattern costs about 13 in GIMP 3.0)
        _, nx, ny = new.get_offsets()
        got = read(new, ix - nx, iy - ny, iw, ih)
        # an enlarged result has pixels only near the seam (the mask hides the rest)
        picks = [
            i for i in range(0, len(got), 4 * max(1, len(got) // 4 // 20000)) if got[i + 3] == 255
        ]
        info["sent_picks"] = len(picks)
        info["sent_diff"] = sum(
            abs(got[i + c] - src_inner[i + c]) for i in picks for c in range(3)
        ) / (3 * max(1, len(picks)))
    if recover:
        again = outpaint(img, [layer], proc="plug-in-flux-outpaint-recover")
        info["recover"] = {k: again[k] for k in ("ok", "status", "message")}
        if again["ok"]:
            back = again["layer"]
            info["recover"].update(
                describe=describe(back, img),
                same_pixels=read(back) == read(new),
                same_mask=read(back.get_mask(), fmt=None) == read(new.get_mask(), fmt=None),
            )
        # without the cached file, recover fetches the result from fal again by its id
        cached = glob.glob(os.path.expanduser("~/.local/share/flux-outpaint/results/*"))
        for path in cached:
            os.remove(path)
        fetched = outpaint(img, [layer], proc="plug-in-flux-outpaint-recover")
        info["refetch"] = {
            "cached_files": len(cached),
            "ok": fetched["ok"],
            "message": fetched["message"],
        }
        if fetched["ok"]:
            info["refetch"]["same_pixels"] = read(fetched["layer"]) == read(new)
    report(**{name: info})
    img.delete()


def refusals():
    img, layer = make_image(300, 200, 0, 0, 300, 200)
    second = Gimp.Layer.new(
        img, "Second", 300, 200, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL
    )
    img.insert_layer(second, None, 0)
    grp = Gimp.GroupLayer.new(img, "Group")
    img.insert_layer(grp, None, 0)
    before = snapshot(img)
    for name, drawables in (
        ("nothing", [layer]),
        ("several", [layer, second]),
        ("group", [grp]),
        ("none", []),
    ):
        r = outpaint(img, drawables)
        refusal = {"ok": r["ok"], "status": r["status"], "message": r["message"]}
        report(**{"refuse_" + name: refusal})
    report(refusals_unchanged=snapshot(img) == before)
    img.delete()

    # with-last-values (none saved yet: the defaults, all automatic) never opens a window;
    # there is no display here, so a window would fail the run
    img, layer = make_image(400, 300, 50, 40, 300, 200)
    r = outpaint(img, [layer], run_mode=Gimp.RunMode.WITH_LAST_VALS)
    report(
        last_values={
            "ok": r["ok"],
            "message": r["message"],
            "layers": [x.get_name() for x in img.get_layers()],
        }
    )


def main(params):
    """``params["cases"]``: keyword arguments of ``case``, one dict per case."""
    for one in params["cases"]:
        case(**one)
    refusals()


def text_layer(params):
    img, _ = make_image(400, 200, 0, 0, 400, 200, name="Background")
    font = Gimp.context_get_font()
    text = Gimp.TextLayer.new(img, "Outpaint me", font, 48.0, Gimp.Unit.pixel())
    img.insert_layer(text, None, 0)
    text.set_offsets(20, 20)
    report(is_text=text.is_text_layer())
    r = outpaint(img, [text], expand_right=64)  # a layer inside the canvas: canvas mode anyway
    report(ok=r["ok"], message=r["message"], layers=[x.get_name() for x in img.get_layers()])
