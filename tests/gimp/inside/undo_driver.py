"""The person at the screen in test_plugin_undo.py, run by the chroot's python3:

    python3 undo_driver.py PARAMS_JSON    (in the session folder)

PARAMS_JSON: ``screen`` (Xvfb's).  Starts Xvfb (``display``), waits for the batch's
``placed``, presses Ctrl+Z once over the image window and writes ``pressed``.  Writes
``driver.json`` (``{"pressed": 0 or 1, "failure": the wait that ran out, or None}``) and
keeps Xvfb up until the host writes ``batch-done``.
"""

from __future__ import annotations

import json
import sys

from xdriver import GaveUp, Xvfb, wait_file, write_file


def press_undo(xvfb):
    wait_file("placed", 180, "the batch never placed a result")
    wid = xvfb.find("GIMP", 60)  # the image window
    xvfb.wait_drawn(wid, 60, "the image window")
    xvfb.pointer_into(wid, 300, 300)
    xvfb.x("key", "ctrl+z")
    xvfb.shot("undo.png")
    write_file("pressed", "1")  # the one press there will be: the batch may look now


def main(params):
    state = {"pressed": 0, "failure": None}
    xvfb = None
    try:
        xvfb = Xvfb(params["screen"])
        press_undo(xvfb)
        state["pressed"] = 1
    except GaveUp as exc:
        state["failure"] = str(exc)
    finally:
        state["xvfb"] = xvfb.status() if xvfb is not None else None
        with open("driver.json", "w") as out:
            json.dump(state, out)
        if xvfb is not None:
            try:
                wait_file("batch-done", 180, "the host never said the batch was done")
            finally:
                xvfb.stop()


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
