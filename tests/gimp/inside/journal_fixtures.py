"""The batch of test_plugin_journal_fixtures.py: journals written by 8fda900's plug-in (already
in ~/.local/share/flux-outpaint), recovered by today's plug-in on a fresh copy of the source
image each, measured exactly as 8fda900's own recover was measured when the fixtures were made
(tests/fixtures/journal_8fda900/gimp_batch.py: ``placed``)."""

from __future__ import annotations

import hashlib
import json
import os

from prelude import describe, make_image, outpaint, read
from reporting import report

JOURNAL = os.path.expanduser("~/.local/share/flux-outpaint/journal.jsonl")


def placed(layer, img):
    layers = list(layer.get_children()) if layer.is_group() else [layer]
    out = []
    for one in layers:
        mask = one.get_mask()
        out.append(
            {
                **describe(one, img),
                "rgba": hashlib.sha256(read(one)).hexdigest(),
                "mask": None if mask is None else hashlib.sha256(read(mask, fmt=None)).hexdigest(),
            }
        )
    return {"canvas": [img.get_width(), img.get_height()], "layers": out}


def states():
    out = {}
    with open(JOURNAL, encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            if "state" in record:
                out[record["request_id"]] = record["state"]
    return out


def main(params):
    got = {}
    for label, request_id in params["cases"]:
        img, layer = make_image(48, 36, 0, 0, 48, 36)
        args = {"request_id": request_id} if request_id else {}
        r = outpaint(img, [layer], proc="plug-in-flux-outpaint-recover", **args)
        got[label] = {k: r[k] for k in ("ok", "status", "message")}
        if r["ok"]:
            got[label]["recovered"] = placed(r["layer"], img)
        img.delete()
    report(cases=got, states=states())
