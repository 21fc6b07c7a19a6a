"""The plug-in as people meet it: the full GIMP (not gimp-console) under Xvfb, an image whose
canvas is larger than its layer, Filters ▸ Generative ▸ Outpaint (FLUX.2 pro)… opened from the
image window's menu bar, the dialog's live line read back, OK, and the new layer.

Three processes cooperate through files in the session folder:

- the driver (inside/gui_driver.py, the chroot's python3) starts Xvfb on a free display
  (``display``), waits for the image window, walks the menu with the keyboard (Alt+R, End,
  Right, Return), screenshots the dialog, reads the live line and clicks OK, then writes
  ``driver-done``;
- GIMP runs a python-fu-eval batch (inside/gui_image.py) that builds the image, shows it
  (``ready``), notes when the Outpaint layer appears (``placed``) and reports the image once
  the driver is done;
- the host serves fal locally and checks what both reported.

The live line is a selectable label: Tab moves the keyboard focus through the dialog and a
selectable label that gets the focus selects all its text, which makes it the X PRIMARY
selection; the driver reads PRIMARY with Gtk after each Tab.  No window manager runs, so
keyboard focus follows the pointer and windows keep the position the driver gives them.
The driver never sleeps on hope: each step waits for what it needs to see (a window, its
geometry, the pointer's position, the screen changed and settled, a file), with a timeout
that ends up here as a failure naming what never happened.

With FLUX_OUTPAINT_SCREENSHOT_DIR set, the dialog's screenshot is copied there as
``dialog-<GIMP version>.png`` and the whole screen at that moment as ``screen-<version>.png``
(docs/images/dialog.png is cut from the latter).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from .harness import gui_driver, local_server, server_env

TITLE = "Outpaint (FLUX.2 pro)"
SCREENSHOT_DIR_ENV = "FLUX_OUTPAINT_SCREENSHOT_DIR"
CANVAS = (840, 480)
LAYER = (100, 40, 640, 400)  # x, y, width, height: the canvas reaches 100/100/40/40 beyond it
SCREEN = "1280x960x24"
GIMP_TIMEOUT_S = 300
DRIVER_TIMEOUT_S = GIMP_TIMEOUT_S + 60


def _distinct_colours(path: Path) -> int:
    with Image.open(path) as im:
        return len(im.convert("RGB").getcolors(maxcolors=1 << 20) or [])


def test_menu_opens_the_dialog_and_ok_adds_an_outpaint_layer(gimp):
    gimp.install_plugin()
    d = gimp.host_dir
    gui = gimp.gimp_gui
    assert gimp.host(gui).is_file(), f"no full GIMP {gui} in the sandbox"
    params = {"title": TITLE, "canvas": CANVAS, "screen": SCREEN}
    with local_server() as server:
        with gui_driver(gimp, "gui_driver.py", params, DRIVER_TIMEOUT_S) as display:
            result = gimp.run_batch(
                "gui_image",
                {"canvas": CANVAS, "layer": LAYER, "wait_s": GIMP_TIMEOUT_S - 60},
                env={**server_env(server), "DISPLAY": display},
                timeout=GIMP_TIMEOUT_S,
                gui=True,
            )
        submits = list(server.submits)
        prices = [server.price_usd(rid) for rid in submits]

    seen = json.loads((d / "driver.json").read_text())
    gimp_tail = result.stderr[-3000:]
    assert seen["failure"] is None, (
        f"the driver gave up: {seen['failure']} (Xvfb: {seen['xvfb']})\n{result.describe()}"
    )
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
    assert result.error is None, result.error + gimp_tail
    assert result.report is not None, f"the batch never finished: {result.describe()}"
    report = result.report
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
