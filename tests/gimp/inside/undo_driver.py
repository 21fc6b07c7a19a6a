"""The person at the screen in test_plugin_undo.py, run by the chroot's python3:

    python3 undo_driver.py PARAMS_JSON    (in the session folder)

PARAMS_JSON: ``screen`` (Xvfb's) and optionally ``shot`` (a screenshot's file name, taken
once the placed result is on screen and the screen has settled).  Starts Xvfb (``display``),
waits for the batch's ``placed``, presses Ctrl+Z once over the image window and writes
``pressed``.  Writes
``driver.json`` (``{"pressed": 0 or 1, "failure": the wait that ran out, or None}``) and
keeps Xvfb up until the host writes ``batch-done``.
"""

from __future__ import annotations

import json
import sys

from xdriver import run_driver, wait_file, write_file

SHOT_SIZE = (1280, 1000)


def press_undo(xvfb, shot=None):
    wait_file("placed", 180, "the batch never placed a result")
    wid = xvfb.find("GIMP", 60)  # the image window
    xvfb.wait_drawn(wid, 60, "the image window")
    if shot:  # the whole screen, so the Layers dock has room for every row
        before = xvfb.wait_settled(what="the image window with the result")
        g = xvfb.geometry(wid)
        if (g["x"], g["y"], g["width"], g["height"]) != (0, 0, *SHOT_SIZE):
            xvfb.place(wid, 0, 0, SHOT_SIZE[0], SHOT_SIZE[1])
            # GIMP lays the window out again after the resize: shoot what it drew then
            xvfb.wait_settled(what="the resized image window", changed_from=before)
        xvfb.shot(shot)
    xvfb.pointer_into(wid, 300, 300)
    xvfb.x("key", "ctrl+z")
    xvfb.shot("undo.png")
    write_file("pressed", "1")  # the one press there will be: the batch may look now


def main(params):
    state = {"pressed": 0}

    def body(xvfb):
        press_undo(xvfb, params.get("shot"))
        state["pressed"] = 1

    run_driver(params, state, body, 180)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
