"""The person at the screen in test_plugin_dialog.py, run by the chroot's python3:

    python3 dialog_driver.py PARAMS_JSON    (in the session folder)

PARAMS_JSON: ``screen`` (Xvfb's) and ``steps``, each ``{"window": title regex, ...}`` with
optional ``timeout`` (to find it, default 60 s), ``shot`` (a screenshot's file name),
``type`` (text typed into it), ``then`` (a file to wait for after the click), ``after`` (a
file the host writes when the window may be
answered) and ``click`` (default true: click its bottom-right button, OK in GIMP's dialogs
or the wait dialog's only one, Cancel; "help": its bottom-left one, Help in GIMP's
dialogs).  Starts Xvfb (``display``) and handles the steps in
order; a window that never shows up ends the steps.  Writes ``driver.json``
(``{"steps": [{"window", "found"}...], "failure": the wait that ran out, or None,
"xvfb": "running" or how it ended}``) and
keeps Xvfb up until the host writes ``batch-done``.
"""

from __future__ import annotations

import json
import sys

from xdriver import GaveUp, run_driver, wait_file


def answer(xvfb, step, wid):
    xvfb.wait_drawn(wid, 60, f"the window {step['window']!r}")
    if step.get("shot"):
        xvfb.shot(step["shot"])
    if step.get("type"):
        g = xvfb.geometry(wid)
        xvfb.pointer_into(wid, g["width"] // 2, g["height"] // 2)
        xvfb.x("type", "--delay", "20", step["type"])
    if step.get("after"):
        wait_file(step["after"], 60, f"the host never wrote {step['after']!r}")
    click = step.get("click", True)
    if click:
        g = xvfb.geometry(wid)
        x = 50 if click == "help" else g["width"] - 50
        xvfb.pointer_into(wid, x, g["height"] - 28)
        xvfb.x("click", "1")
    if step.get("then"):
        try:
            wait_file(step["then"], 60, f"the host never wrote {step['then']!r}")
        except GaveUp:
            xvfb.shot("then-missing.png")
            raise


def main(params):
    state = {"steps": []}

    def body(xvfb):
        for step in params["steps"]:
            try:
                wid = xvfb.find(step["window"], step.get("timeout", 60), visible=False, last=False)
            except GaveUp:
                state["steps"].append({"window": step["window"], "found": False})
                xvfb.shot("missing.png")
                break
            answer(xvfb, step, wid)
            state["steps"].append({"window": step["window"], "found": True})

    run_driver(params, state, body, 120)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
