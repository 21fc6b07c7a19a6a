"""Batches of test_plugin_variations.py: one take and three takes, recover of a run
(``main``), three takes of which the server fails one (``partial``) or all (``all_fail``), two
takes against the drift scenario with colour matching, then recovered (``drift``).

The canvas grows in every run (64 px left, 32 px top), so the group and the growth share
the undo step that test_plugin_variations.py checks through the GUI.
"""

from __future__ import annotations

import json
import os

import gi
from prelude import all_layers, describe, make_image, outpaint, read, snapshot
from reporting import report

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402

GROW = {"expand_left": 64, "expand_top": 32}
JOURNAL = "~/.local/share/flux-outpaint/journal.jsonl"
NORMAL = Gimp.LayerMode.NORMAL


def journal_runs():
    """Per request: its run id, variation and state as the plug-in's journal tells them."""
    out: dict[str, dict] = {}
    with open(os.path.expanduser(JOURNAL), encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            entry = out.setdefault(record["request_id"], {})
            if "state" in record:  # a note (e.g. a colour correction) keeps the state
                entry["state"] = record["state"]
            if "color_correction" in record:
                entry["corrected"] = True
            purpose = record.get("purpose") or {}
            if "run" in purpose:
                entry.update(run=purpose["run"], variation=purpose.get("variation"))
    return out


def group_info(group, img):
    """The group and its children: names, visibility, masks, rectangles, pixels."""
    children = list(group.get_children()) if group.is_group() else []
    return {
        "group": describe(group, img),
        "is_group": bool(group.is_group()),
        "is_layer": isinstance(group, Gimp.Layer),
        "children": [describe(c, img) for c in children],
        "visible": [bool(c.get_visible()) for c in children],
        "same_masks": len({read(c.get_mask(), fmt=None) for c in children}) == 1,
        "pixels": [read(c) for c in children],
    }


def one_run(name, count, args=None, nested=False):
    img, layer = make_image(400, 300, 0, 0, 400, 300)
    if nested:  # the source inside a group, below another layer
        grp = Gimp.GroupLayer.new(img, "Group")
        img.insert_layer(grp, None, 0)
        img.reorder_item(layer, grp, 0)
        above = Gimp.Layer.new(img, "Above", 8, 8, Gimp.ImageType.RGBA_IMAGE, 100.0, NORMAL)
        img.insert_layer(above, grp, 0)
    img.set_selected_layers([layer])
    before = snapshot(img)
    src = read(layer)
    r = outpaint(img, [layer], variations=count, **GROW, **(args or {}))
    info = {k: r[k] for k in ("ok", "status", "message")}
    if r["ok"]:
        info.update(group_info(r["layer"], img))
        info.update(
            top=[x.get_name() for x in img.get_layers()],
            canvas=[img.get_width(), img.get_height()],
            src=describe(layer, img),
            src_position=img.get_item_position(layer),
            src_unchanged=read(layer) == src,
            selected=[x.get_name() for x in img.get_selected_layers()],
            layers=len(all_layers(img)),
        )
    else:
        info["unchanged"] = snapshot(img) == before
    return img, layer, r, info


def main(params):
    img, _, _, one = one_run("one", 1)
    one.pop("pixels")
    report(one=one)
    img.delete()

    img, layer, r, three = one_run("three", 3)
    pixels = three.pop("pixels")
    report(three=three, three_distinct=len(set(pixels)))
    runs = journal_runs()
    report(journal=runs)
    if r["ok"]:
        # recover by the id of the second take: the whole run comes back, as a group again
        ids = sorted(
            (e["variation"], rid) for rid, e in runs.items() if e.get("variation") is not None
        )
        again = outpaint(img, [layer], proc="plug-in-flux-outpaint-recover", request_id=ids[1][1])
        back = {k: again[k] for k in ("ok", "status", "message")}
        if again["ok"]:
            got = group_info(again["layer"], img)
            back.update(
                {k: v for k, v in got.items() if k != "pixels"},
                same_pixels=got["pixels"] == pixels,
            )
        report(recover=back)
    img.delete()

    img, _, _, nested = one_run("nested", 2, nested=True)
    nested.pop("pixels", None)
    report(nested=nested)
    img.delete()


def partial(params):
    """Then recover by the failed take's id: the run comes back without it, and it is named."""
    img, layer, _, info = one_run("partial", 3)
    info.pop("pixels", None)
    runs = journal_runs()
    report(partial=info, journal=runs)
    failed = [rid for rid, e in runs.items() if e.get("state") == "failed"]
    if failed:
        again = outpaint(img, [layer], proc="plug-in-flux-outpaint-recover", request_id=failed[0])
        back = {k: again[k] for k in ("ok", "status", "message")}
        if again["ok"]:
            back["names"] = [c.get_name() for c in again["layer"].get_children()]
        report(recover=back)
    img.delete()


def all_fail(params):
    img, _, _, info = one_run("all_fail", 3)
    report(all_fail=info, journal=journal_runs())
    img.delete()


def drift(params):
    """Every take is colour-matched (the journal notes each correction) and recover places
    each take as the run did."""
    img, layer, r, info = one_run("drift", 2, {"color_match": True})
    pixels = info.pop("pixels", None)
    report(drift=info, journal=journal_runs())
    if r["ok"]:
        again = outpaint(img, [layer], proc="plug-in-flux-outpaint-recover")
        back = {k: again[k] for k in ("ok", "status", "message")}
        if again["ok"]:
            got = group_info(again["layer"], img)
            back.update(names=[c["name"] for c in got["children"]])
            back["same_pixels"] = got["pixels"] == pixels
        report(recover=back)
    img.delete()
