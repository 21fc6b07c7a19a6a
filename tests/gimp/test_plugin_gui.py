"""The plug-in as people meet it: the full GIMP (not gimp-console) under Xvfb, an image whose
canvas is larger than its layer, Filters ▸ Generative ▸ Outpaint (FLUX.2 pro)… opened from the
image window's menu bar, the dialog's live line read back, OK, and the new layer.

Three processes cooperate through files in the session folder:

- the driver (the chroot's python3) starts Xvfb on a free display (``display``), waits for the
  image window, walks the menu with the keyboard (Alt+R, End, Right, Return), screenshots the
  dialog, reads the live line and clicks OK, then writes ``driver-done``;
- GIMP runs a python-fu-eval batch that builds the image, shows it (``ready``), notes when the
  Outpaint layer appears (``placed``) and reports the image once the driver is done;
- the host serves fal locally and checks what both reported.

The live line is a selectable label: Tab moves the keyboard focus through the dialog and a
selectable label that gets the focus selects all its text, which makes it the X PRIMARY
selection; the driver reads PRIMARY with Gtk after each Tab.  No window manager runs, so
keyboard focus follows the pointer and windows keep the position the driver gives them.

With FLUX_OUTPAINT_SCREENSHOT_DIR set, the dialog's screenshot is copied there as
``dialog-<GIMP version>.png`` and the whole screen at that moment as ``screen-<version>.png``
(docs/images/dialog.png is cut from the latter).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from .harness import PRELUDE, RUNNER, local_server, server_env

TITLE = "Outpaint (FLUX.2 pro)"
SCREENSHOT_DIR_ENV = "FLUX_OUTPAINT_SCREENSHOT_DIR"
CANVAS = (840, 480)
LAYER = (100, 40, 640, 400)  # x, y, width, height: the canvas reaches 100/100/40/40 beyond it
DISPLAY_WAIT_S = 60
GIMP_TIMEOUT_S = 300
DRIVER_TIMEOUT_S = GIMP_TIMEOUT_S + 60

# Inside GIMP, after PRELUDE.  A landscape rather than the test pattern: this is the image the
# README's dialog picture shows behind the dialog.
BODY = r"""
import math
import os

SESSION = "@SESSION@"
CW, CH = @CANVAS@
LX, LY, LW, LH = @LAYER@


def landscape(w, h):
    def mix(a, b, t):
        return tuple(p + (q - p) * t for p, q in zip(a, b))

    sun_x, sun_y, sun_r = w * 0.7, h * 0.26, h * 0.065
    ridge = [h * (0.47 + 0.07 * math.sin(x / w * 6.5 + 1.2) + 0.025 * math.sin(x / w * 23.0))
             for x in range(w)]
    hills = [h * (0.66 + 0.05 * math.sin(x / w * 3.7 + 0.5) + 0.012 * math.sin(x / w * 37.0))
             for x in range(w)]
    out = bytearray(w * h * 4)
    i = 0
    for y in range(h):
        sky = mix((38, 86, 168), (236, 206, 170), (y / h) ** 1.6)
        for x in range(w):
            if y < ridge[x]:
                d = math.hypot(x - sun_x, y - sun_y)
                if d < sun_r:
                    c = (255, 246, 222)
                else:
                    c = mix(sky, (255, 214, 150), 0.55 * max(0.0, 1 - (d - sun_r) / (h * 0.4)))
            elif y < hills[x]:
                depth = (y - ridge[x]) / (h * 0.25)
                peak = max(0.0, min(1.0, (h * 0.5 - ridge[x]) / (h * 0.06)))
                snow = peak * max(0.0, 1 - (y - ridge[x]) / 16)
                c = mix(mix((112, 124, 152), (62, 74, 98), min(1.0, depth)), (236, 240, 246),
                        snow * 0.85)
            else:
                depth = (y - hills[x]) / (h * 0.34)
                grain = ((x * 13 + y * 7) % 17 - 8) * 1.5
                c = mix((96, 140, 62), (42, 84, 34), min(1.0, depth))
                c = (c[0] + grain, c[1] + grain, c[2] + grain * 0.5)
            out[i] = max(0, min(255, int(c[0])))
            out[i + 1] = max(0, min(255, int(c[1])))
            out[i + 2] = max(0, min(255, int(c[2])))
            out[i + 3] = 255
            i += 4
    return bytes(out)


img = Gimp.Image.new(CW, CH, Gimp.ImageBaseType.RGB)
layer = Gimp.Layer.new(img, "Photo", LW, LH, Gimp.ImageType.RGBA_IMAGE, 100.0,
                       Gimp.LayerMode.NORMAL)
img.insert_layer(layer, None, 0)
layer.set_offsets(LX, LY)
write(layer, landscape(LW, LH), LW, LH)
img.set_selected_layers([layer])
img.clean_all()
Gimp.Display.new(img)
Gimp.displays_flush()
open(os.path.join(SESSION, "ready"), "w").write("1")

placed = False
deadline = time.time() + @WAIT@
while time.time() < deadline and not os.path.exists(os.path.join(SESSION, "driver-done")):
    if not placed and any(x.get_name() == "Outpaint" for x in img.get_layers()):
        placed = True
        open(os.path.join(SESSION, "placed"), "w").write("1")
    time.sleep(0.2)
report(canvas=[img.get_width(), img.get_height()],
       layers=[describe(x, img) for x in img.get_layers()])
img.clean_all()  # --quit must not stop at "discard changes?"
"""

# The chroot's python3 (no GIMP imports; Gtk only to read the PRIMARY selection).
DRIVER = r"""
import json, os, select, subprocess, time

TITLE = "^" + @TITLE@.replace("(", "\\(").replace(")", "\\)").replace(".", "\\.") + "$"
state = {"display": None, "image_window": False, "dialog": False, "focus_texts": [],
         "live_line": None, "ok_clicked": False, "dialog_closed": False, "placed": False}
env = dict(os.environ)
xvfb = None


def save():
    with open("driver.json", "w") as out:
        json.dump(state, out)


def x(*args):
    return subprocess.run(["xdotool", *args], env=env, capture_output=True, text=True).stdout


def shot(name, window="root"):
    subprocess.run(["import", "-window", window, name], env=env, capture_output=True)


def wait_file(name, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(name):
            return True
        time.sleep(0.2)
    return False


def find(title, timeout, visible=True):
    end = time.time() + timeout
    while time.time() < end:
        ids = x("search", *(["--onlyvisible"] if visible else []), "--name", title).split()
        if ids:
            return ids[-1]
        time.sleep(0.3)
    return None


def geometry(wid):
    values = dict(line.split("=", 1) for line in x("getwindowgeometry", "--shell", wid).split())
    return {k.lower(): int(values[k]) for k in ("X", "Y", "WIDTH", "HEIGHT")}


try:
    r, w = os.pipe()
    # -displayfd: Xvfb picks a free display (the chroots share the host's abstract sockets).
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1280x960x24",
                             "-nolisten", "tcp"], pass_fds=[w], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    os.close(w)
    if select.select([r], [], [], 60)[0]:
        state["display"] = ":" + os.read(r, 32).decode().strip()
        env["DISPLAY"] = state["display"]
        os.environ["DISPLAY"] = state["display"]
        with open("display.tmp", "w") as out:
            out.write(state["display"])
        os.rename("display.tmp", "display")
    if state["display"] and wait_file("ready", 180):
        image = find("@CANVAS_W@x@CANVAS_H@", 60)
        state["image_window"] = image is not None
        if image:
            x("windowmove", image, "0", "0")
            x("windowsize", image, "1280", "960")
            time.sleep(3)
            g = geometry(image)
            # The pointer rests over the canvas (never clicks there): keyboard focus follows it.
            x("mousemove", str(g["width"] // 2), str(g["height"] // 2))
            time.sleep(0.5)
            x("key", "shift+ctrl+j")  # View ▸ Zoom ▸ Fit Image in Window, for the picture
            time.sleep(2)
            shot("image.png")
            x("key", "alt+r")  # Filte_rs
            time.sleep(1.5)
            x("key", "End")  # Generative, the menu's last entry
            time.sleep(1)
            x("key", "Right")  # opens it, Outpaint (FLUX.2 pro)… selected
            time.sleep(1.5)
            shot("menu.png")
            x("key", "Return")
            dialog = find(TITLE, 90)
            state["dialog"] = dialog is not None
            if dialog is None:
                shot("missing.png")
            else:
                time.sleep(2)
                d = geometry(dialog)
                # Over the canvas's right half, with the image window around it.
                x("windowmove", dialog, str(max(0, g["width"] - d["width"] - 300)), "150")
                time.sleep(1.5)
                d = geometry(dialog)
                state["dialog_geometry"] = d
                shot("dialog.png", dialog)
                shot("screen.png")
                import gi
                gi.require_version("Gtk", "3.0")
                gi.require_version("Gdk", "3.0")
                from gi.repository import Gdk, Gtk
                clipboard = Gtk.Clipboard.get(Gdk.SELECTION_PRIMARY)
                x("mousemove", str(d["x"] + 12), str(d["y"] + 12))
                # The menu left the X focus on the image window (Tab there hides the docks).
                x("windowfocus", dialog)
                time.sleep(0.5)
                for _ in range(40):
                    x("key", "Tab")
                    time.sleep(0.5)
                    text = clipboard.wait_for_text()  # asks the owner: the plug-in
                    state["focus_texts"].append(text)
                    if text and text.startswith("Output"):
                        state["live_line"] = text
                        break
                shot("read.png")
                # OK sits bottom-right in GIMP's dialogs.
                x("mousemove", str(d["x"] + d["width"] - 50), str(d["y"] + d["height"] - 28))
                time.sleep(0.5)
                x("click", "1")
                state["ok_clicked"] = True
                end = time.time() + 60
                while time.time() < end and x("search", "--name", TITLE).split():
                    time.sleep(0.3)
                state["dialog_closed"] = not x("search", "--name", TITLE).split()
                state["placed"] = wait_file("placed", 120)
                time.sleep(2)  # the plug-in returns just after it adds the layer
                shot("after.png")
finally:
    save()
    with open("driver-done", "w") as out:
        out.write("1")
    if xvfb is not None:
        wait_file("batch-done", 300)
        xvfb.terminate()
"""


def _fill(template: str, **values: object) -> str:
    for key, value in values.items():
        template = template.replace(f"@{key}@", str(value))
    return template


def _wait_for(path: Path, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists():
            return True
        time.sleep(0.2)
    return False


def _distinct_colours(path: Path) -> int:
    with Image.open(path) as im:
        return len(im.convert("RGB").getcolors(maxcolors=1 << 20) or [])


def test_menu_opens_the_dialog_and_ok_adds_an_outpaint_layer(gimp):
    gimp.install_plugin()
    d = gimp.host_dir
    (d / "gui-body.py").write_text(
        PRELUDE
        + _fill(BODY, SESSION=gimp.chroot_dir, CANVAS=CANVAS, LAYER=LAYER, WAIT=GIMP_TIMEOUT_S - 60)
    )
    (d / "gui-runner.py").write_text(
        _fill(RUNNER, CODE=f"{gimp.chroot_dir}/gui-body.py", RESULT=f"{gimp.chroot_dir}/gui.json")
    )
    (d / "driver.py").write_text(
        _fill(DRIVER, TITLE=repr(TITLE), CANVAS_W=CANVAS[0], CANVAS_H=CANVAS[1])
    )
    gui = gimp.sandbox.gimp_console.replace("gimp-console-", "gimp-")
    assert gimp.host(gui).is_file(), f"no full GIMP {gui} in the sandbox"
    outcome: dict = {}
    thread = threading.Thread(
        target=lambda: outcome.update(
            driver=gimp.run(["python3", f"{gimp.chroot_dir}/driver.py"], timeout=DRIVER_TIMEOUT_S)
        )
    )
    done = None
    with local_server() as server:
        thread.start()
        try:
            assert _wait_for(d / "display", DISPLAY_WAIT_S), "Xvfb did not start"
            display = (d / "display").read_text().strip()
            done = gimp.run(
                [
                    "timeout",
                    "-k",
                    "10",
                    str(GIMP_TIMEOUT_S),
                    gui,
                    "--no-splash",
                    "-d",
                    "-f",
                    "--batch-interpreter",
                    "python-fu-eval",
                    "-b",
                    f"exec(open({gimp.chroot_dir + '/gui-runner.py'!r}).read())",
                    "--quit",
                ],
                env={**server_env(server), "DISPLAY": display},
                timeout=GIMP_TIMEOUT_S + 40,
            )
        finally:
            (d / "batch-done").write_text("1")
            thread.join(DRIVER_TIMEOUT_S + 30)
        submits = list(server.submits)
        prices = [server.price_usd(rid) for rid in submits]

    seen = json.loads((d / "driver.json").read_text())
    gimp_tail = done.stderr[-3000:] if done is not None else ""
    assert seen["image_window"], f"no image window: {seen}\n{gimp_tail}"
    assert seen["dialog"], f"the menu did not open “{TITLE}” (see menu.png): {seen}"

    dialog_png = d / "dialog.png"
    assert dialog_png.is_file(), "no dialog screenshot"
    geom = seen["dialog_geometry"]
    with Image.open(dialog_png) as im:
        assert im.size == (geom["width"], geom["height"])
    # A blank or one-colour grab would have a handful; text, fields and buttons have many.
    assert _distinct_colours(dialog_png) > 50
    if folder := os.environ.get(SCREENSHOT_DIR_ENV):
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(dialog_png, Path(folder) / f"dialog-{gimp.gimp_version}.png")
        shutil.copy(d / "screen.png", Path(folder) / f"screen-{gimp.gimp_version}.png")

    # On the way, Tab selected the side fields (prefilled with the canvas margins, left and
    # right before top and bottom) and the seam blend.
    texts = [t for t in seen["focus_texts"] if t]
    assert {"100", "40", "16"} <= set(texts), texts
    assert texts.index("100") < texts.index("40") < texts.index("16"), texts
    live = seen["live_line"]
    assert live is not None, f"the live line never took the focus: {seen['focus_texts']}"
    assert live.startswith("Output 840×480 (+100 left, +100 right, +40 top, +40 bottom)"), live
    assert "canvas grows" not in live and "scaled" not in live, live
    cost = re.search(r"about \$(\d+\.\d{3})$", live)
    assert cost, live

    assert seen["ok_clicked"] and seen["dialog_closed"], seen
    state = json.loads((d / "gui.json").read_text())
    assert state["error"] is None, state["error"] + gimp_tail
    report = state["report"]
    assert seen["placed"], f"no Outpaint layer appeared: {report}"
    assert report["canvas"] == list(CANVAS)
    names = [layer["name"] for layer in report["layers"]]
    assert names == ["Outpaint", "Photo"], report
    new, photo = report["layers"]
    assert (new["x"], new["y"], new["w"], new["h"]) == (0, 0, *CANVAS)
    assert new["has_mask"]
    assert (photo["x"], photo["y"], photo["w"], photo["h"]) == LAYER
    assert len(submits) == 1, submits
    # The estimate shown is what fal charged for the output it made.
    assert prices[0] == pytest.approx(float(cost[1]), abs=0.0005), (prices, live)
