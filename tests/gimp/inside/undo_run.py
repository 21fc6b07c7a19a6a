"""Batch of test_plugin_undo.py, in the full GIMP: place a result in an image shown in a
window, then wait for the driver's one Ctrl+Z and report the image as it is after it.

``params``: ``wait_s`` (how long each wait for the driver may take) and optionally ``args``
(more arguments of the plug-in, e.g. ``{"variations": 3}``).
"""

from __future__ import annotations

import os
import time

import gi
from prelude import all_layers, make_image, outpaint, snapshot, wait_for_file
from reporting import report

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402

POLL_S = 0.2


def main(params):
    img, layer = make_image(500, 300, 0, 0, 500, 300)
    img.set_selected_layers([layer])

    def place():
        r = outpaint(img, [layer], expand_left=64, expand_top=32, **params.get("args", {}))
        # a non-interactive call leaves this to its caller; the driver may shoot the screen
        Gimp.displays_flush()
        report(layers_after=[x.get_name() for x in all_layers(img)])
        return r

    undo_once(params, img, place)


def undo_once(params, img, place, take=snapshot):
    """Show ``img`` in a window, run ``place()`` (an outpaint call's result dict), tell the
    driver, wait for its one Ctrl+Z, and report the image before, after and undone as
    ``take`` (a snapshot function) sees it."""
    session = params["session_dir"]
    img.clean_all()
    Gimp.Display.new(img)
    Gimp.displays_flush()
    before = take(img)
    r = place()
    after = take(img)
    report(ok=r["ok"], message=r["message"], changed=after != before, size_after=after["size"])
    with open(os.path.join(session, "placed"), "w") as out:
        out.write("1")
    # The driver presses Ctrl+Z once and then says so: looking only after that, the image is
    # what that one press left (one press must be enough).
    wait_for_file(os.path.join(session, "pressed"), params["wait_s"], "the driver's Ctrl+Z")
    deadline = time.monotonic() + params["wait_s"]
    while len(img.get_layers()) > 1 and time.monotonic() < deadline:
        time.sleep(POLL_S)
    undone = take(img)
    report(
        undo_seen=len(img.get_layers()) <= 1,
        undone=undone == before,
        size_undone=undone["size"],
        layers_undone=[x[0] for x in undone["layers"]],
    )
