"""The person at the screen in test_plugin_gui.py, run by the chroot's python3:

    python3 gui_driver.py PARAMS_JSON    (in the session folder)

PARAMS_JSON: ``title`` (the dialog's), ``wait_title`` (the wait window's), ``live`` (how the
live line starts), ``canvas`` ([w, h]: the image window's title holds "WxH"), ``screen``
(Xvfb's), ``repeat`` (then Ctrl+F too).  Starts Xvfb (``display``), waits for the batch's
``ready``, opens the dialog from the image window's menu with the keyboard, screenshots it,
reads the live line, clicks OK, screenshots the wait window, and waits for ``placed``.  With
``repeat``: Filters ▸ Repeat (Ctrl+F) over the canvas, the wait window found again, Cancel
clicked once the host has seen the second submit (``submitted-again``).  Writes what it saw
to ``driver.json`` (``failure``: the wait that ran out, if one did), then ``driver-done``, and
keeps Xvfb up until the host writes ``batch-done``.
"""

from __future__ import annotations

import json
import sys
import time

from xdriver import GaveUp, run_driver, wait_file

WAIT_PICTURE_DELAY_S = 2.5  # for the screenshot only; no step depends on it


def exact(text):
    """xdotool's --name takes a POSIX regex: the whole title, literally."""
    return "^" + text.replace("(", "\\(").replace(")", "\\)").replace(".", "\\.") + "$"


def drive(xvfb, params, state):
    title = exact(params["title"])
    wait_file("ready", 180, "the batch never showed its image")
    cw, ch = params["canvas"]
    image = xvfb.find(f"{cw}x{ch}", 60)
    state["image_window"] = True
    g = xvfb.place(image, 0, 0, 1280, 960)
    xvfb.wait_settled(what="the resized image window")
    # The pointer rests over the canvas (never clicks there): keyboard focus follows it.
    xvfb.pointer_to(g["width"] // 2, g["height"] // 2)
    # View ▸ Zoom ▸ Fit Image in Window, for the picture
    xvfb.key_and_wait("shift+ctrl+j", "Fit Image in Window")
    xvfb.shot("image.png")
    xvfb.key_and_wait("alt+r", "the Filters menu")  # Filte_rs
    xvfb.key_and_wait("End", "the menu's last entry")  # Generative
    xvfb.key_and_wait("Right", "the Generative submenu")  # Outpaint (FLUX.2 pro)… selected
    xvfb.shot("menu.png")
    xvfb.x("key", "Return")
    try:
        dialog = xvfb.find(title, 90)
    except GaveUp:
        xvfb.shot("missing.png")
        raise
    state["dialog"] = True
    xvfb.wait_settled(dialog, 60, "the dialog")
    d = xvfb.geometry(dialog)
    # Over the canvas's right half, with the image window around it.
    d = xvfb.place(dialog, max(0, g["width"] - d["width"] - 300), 150)
    state["dialog_geometry"] = d
    # the pointer off the dialog (over the canvas's lower left): no hover, no tooltip
    xvfb.pointer_to(300, g["height"] - 180)
    xvfb.wait_settled(what="the screen around the moved dialog")
    xvfb.shot("dialog.png", dialog)
    xvfb.shot("screen.png")

    import gi

    gi.require_version("Gtk", "3.0")
    gi.require_version("Gdk", "3.0")
    from gi.repository import Gdk, Gtk

    clipboard = Gtk.Clipboard.get(Gdk.SELECTION_PRIMARY)
    xvfb.pointer_to(d["x"] + 12, d["y"] + 12)
    # The menu left the X focus on the image window (Tab there hides the docks).
    xvfb.focus(dialog)
    for _ in range(40):
        xvfb.x("key", "Tab")
        # No pause needed: asking for PRIMARY goes to its owner, the plug-in (the dialog's
        # fields and the live line are its widgets), whose X events are handled in order,
        # so it answers only after it has handled the Tab (and any new selection it made).
        text = clipboard.wait_for_text()
        state["focus_texts"].append(text)
        if text and text.startswith(params["live"]):
            state["live_line"] = text
            break
    xvfb.shot("read.png")
    # OK sits bottom-right in GIMP's dialogs.
    xvfb.pointer_to(d["x"] + d["width"] - 50, d["y"] + d["height"] - 28)
    xvfb.x("click", "1")
    state["ok_clicked"] = True
    xvfb.wait_gone(title, 60)
    state["dialog_closed"] = True
    wait = xvfb.find(exact(params["wait_title"]), 60)
    state["wait_window"] = True
    xvfb.place(wait, 700, 120)
    wait_file("running", 60, "the host never saw every take running")
    # The window never settles (its bar pulses, its seconds count): once drawn, give the
    # takes' rows a status poll (the plug-in polls every second or so) before the picture.
    xvfb.wait_drawn(wait, 30, "the wait window")
    time.sleep(WAIT_PICTURE_DELAY_S)
    xvfb.shot("wait.png", wait)
    wait_file("placed", 120, "no Outpaint layer appeared after OK")
    state["placed"] = True
    # the plug-in returns just after it adds the layer; the picture once GIMP has redrawn
    xvfb.wait_settled(what="the image window with the result")
    xvfb.shot("after.png")
    if params.get("repeat"):
        repeat(xvfb, params, image, g, state)


def repeat(xvfb, params, image, g, state):
    """Filters ▸ Repeat (Ctrl+F) spends money again: the wait window, and Cancel on fal."""
    xvfb.pointer_to(g["width"] // 2, g["height"] // 2)
    # the plug-in's windows are gone: the keyboard goes to the image window again
    xvfb.focus(image)
    xvfb.x("key", "ctrl+f")
    try:
        wait = xvfb.find(exact(params["wait_title"]), 60)
    except GaveUp:
        xvfb.shot("repeat-missing.png")
        raise
    state["repeat_wait_window"] = True
    wait_file("submitted-again", 60, "Ctrl+F sent nothing to fal")
    xvfb.wait_drawn(wait, 30, "the wait window after Ctrl+F")
    d = xvfb.geometry(wait)
    xvfb.pointer_into(wait, d["width"] - 50, d["height"] - 28)  # Cancel: its only button
    xvfb.x("click", "1")
    xvfb.wait_gone(exact(params["wait_title"]), 60)
    state["repeat_cancelled"] = True


def main(params):
    state = {
        "display": None,
        "image_window": False,
        "dialog": False,
        "focus_texts": [],
        "live_line": None,
        "ok_clicked": False,
        "dialog_closed": False,
        "wait_window": False,
        "placed": False,
        "repeat_wait_window": False,
        "repeat_cancelled": False,
        "failure": None,
    }

    def body(xvfb):
        state["display"] = xvfb.display
        drive(xvfb, params, state)

    run_driver(params, state, body, 300, announce=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
