"""Batch of test_plugin_faults.py: one run against whatever the host set up, reported.

``params``: ``canvas`` (w, h) and ``layer`` (x, y, w, h) of the test image.
"""

from __future__ import annotations

from prelude import all_layers, make_image, outpaint, snapshot
from reporting import report


def main(params):
    img, layer = make_image(*params["canvas"], *params["layer"])
    img.set_selected_layers([layer])
    before = snapshot(img)
    r = outpaint(img, [layer])
    report(
        ok=r["ok"],
        status=r["status"],
        message=r["message"],
        seconds=r["seconds"],
        unchanged=snapshot(img) == before,
        layers=len(all_layers(img)),
    )
