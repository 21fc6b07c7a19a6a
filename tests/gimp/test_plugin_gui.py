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

With FLUX_OUTPAINT_SCREENSHOT_DIR set, the screenshots are copied there: the dialog
(``dialog-<GIMP version>[-de].png``), the whole screen at that moment (``screen-…``: the
README's docs/images/dialog.png and dialog-de.png), the wait window (``wait-…``: wait.png,
three takes) and the screen after the run (``after-…``: layers-dock.png is its Layers dock,
at the default width, cut from GIMP 3.2's).

Run in English (Variations 3 from last values, then Ctrl+F, cancelled in its wait window:
that second set of requests must be cancelled on fal) and with ``LANGUAGE=de`` (one take:
the menu entry, the dialog, the live line and the layer's name in German).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from .harness import gui_driver, local_server, server_env
from .test_plugin_dialog import marks

SCREENSHOT_DIR_ENV = "FLUX_OUTPAINT_SCREENSHOT_DIR"
CANVAS = (840, 480)
LAYER = (100, 40, 640, 400)  # x, y, width, height: the canvas reaches 100/100/40/40 beyond it
SCREEN = "1280x960x24"
GIMP_TIMEOUT_S = 300
DRIVER_TIMEOUT_S = GIMP_TIMEOUT_S + 60
RUN_SECONDS = 8  # each job on the local server: time to see the wait window and to cancel
LAST_VALUES = "plug-in-settings/GimpProcedureConfigRun-plug-in-flux-outpaint.last"


@dataclass(frozen=True)
class Language:
    """What a person in this language sees, and what the run does there."""

    code: str  # LANGUAGE; "" = GIMP's default (English)
    title: str  # the dialog's
    wait_title: str  # the wait window's
    live: str  # how the live line starts
    cost: str  # a regex for the cost at the end of the live line: total, each
    result: str  # the result layer's (or group's) name
    takes: tuple[str, ...]  # the takes' layer names ((): one take, a layer)
    repeat: bool  # Ctrl+F after the run, cancelled in its wait window


ENGLISH = Language(
    "",
    "Outpaint (FLUX.2 pro)",
    "Outpainting",
    "Output 840×480 (+100 left, +100 right, +40 top, +40 bottom)",
    r"about \$(\d+\.\d{3}) for 3 variations \(\$(\d+\.\d{3}) each\)$",
    "Outpaint",
    ("#1 Outpaint", "#2 Outpaint", "#3 Outpaint"),
    True,
)
GERMAN = Language(
    "de",
    "Bild erweitern (FLUX.2 pro)",
    "Bild wird erweitert",
    "Ausgabe 840×480 (+100 links, +100 rechts, +40 oben, +40 unten)",
    r"etwa (\d+\.\d{3}) \$()$",
    "Erweiterung",
    (),
    False,
)


def _distinct_colours(path: Path) -> int:
    with Image.open(path) as im:
        return len(im.convert("RGB").getcolors(maxcolors=1 << 20) or [])


def _keep(gimp, lang: Language, names: dict[str, str]) -> None:
    """With FLUX_OUTPAINT_SCREENSHOT_DIR set, copy the screenshots there."""
    if folder := os.environ.get(SCREENSHOT_DIR_ENV):
        Path(folder).mkdir(parents=True, exist_ok=True)
        suffix = f"-{lang.code}" if lang.code else ""
        for shot, name in names.items():
            if (gimp.host_dir / shot).is_file():
                target = f"{name}-{gimp.gimp_version}{suffix}.png"
                shutil.copy(gimp.host_dir / shot, Path(folder) / target)


@pytest.mark.parametrize("lang", [ENGLISH, GERMAN], ids=["en", "de"])
def test_menu_opens_the_dialog_and_ok_adds_an_outpaint_layer(gimp, lang):
    gimp.install_plugin()
    if lang.takes:  # the last values a person left: Variations 3
        last = gimp.host_profile / LAST_VALUES
        last.parent.mkdir(parents=True, exist_ok=True)
        last.write_text(f"(variations {len(lang.takes)})\n")
    d = gimp.host_dir
    gui = gimp.gimp_gui
    assert gimp.host(gui).is_file(), f"no full GIMP {gui} in the sandbox"
    count = max(1, len(lang.takes))
    params = {
        "title": lang.title,
        "wait_title": lang.wait_title,
        "live": lang.live.split(" ")[0],
        "canvas": CANVAS,
        "screen": SCREEN,
        "repeat": lang.repeat,
    }
    env = {"LANGUAGE": lang.code} if lang.code else {"LANGUAGE": "", "LC_ALL": "C.UTF-8"}
    with local_server(run_seconds=RUN_SECONDS) as server:
        when = {
            "running": lambda: len(server.submits) >= count,
            "submitted-again": lambda: len(server.submits) > count,
        }
        with (
            marks(gimp, when),
            gui_driver(gimp, "gui_driver.py", params, DRIVER_TIMEOUT_S) as display,
        ):
            result = gimp.run_batch(
                "gui_image",
                {
                    "canvas": CANVAS,
                    "layer": LAYER,
                    "wait_s": GIMP_TIMEOUT_S - 60,
                    "result": lang.result,
                },
                env={**server_env(server), **env, "DISPLAY": display},
                timeout=GIMP_TIMEOUT_S,
                gui=True,
            )
        submits = list(server.submits)
        prices = [server.price_usd(rid) for rid in submits]
        cancels = [e for e in server.log if str(e.get("path", "")).endswith("/cancel")]

    seen = json.loads((d / "driver.json").read_text())
    gimp_tail = result.stderr[-3000:]
    assert seen["failure"] is None, (
        f"the driver gave up: {seen['failure']} (Xvfb: {seen['xvfb']})\n{result.describe()}"
    )
    assert seen["image_window"], f"no image window: {seen}\n{gimp_tail}"
    assert seen["dialog"], f"the menu did not open “{lang.title}” (see menu.png): {seen}"

    dialog_png = d / "dialog.png"
    assert dialog_png.is_file(), "no dialog screenshot"
    geom = seen["dialog_geometry"]
    with Image.open(dialog_png) as im:
        assert im.size == (geom["width"], geom["height"])
    # A blank or one-colour grab would have a handful; text, fields and buttons have many.
    assert _distinct_colours(dialog_png) > 50
    assert seen["wait_window"], f"no wait window “{lang.wait_title}” after OK: {seen}"
    assert _distinct_colours(d / "wait.png") > 20
    _keep(
        gimp,
        lang,
        {"dialog.png": "dialog", "screen.png": "screen", "wait.png": "wait", "after.png": "after"},
    )

    # On the way, Tab selected the side fields (prefilled with the canvas margins, left and
    # right before top and bottom) and the seam blend.
    texts = [t for t in seen["focus_texts"] if t]
    assert {"100", "40", "16"} <= set(texts), texts
    assert texts.index("100") < texts.index("40") < texts.index("16"), texts
    live = seen["live_line"]
    assert live is not None, f"the live line never took the focus: {seen['focus_texts']}"
    assert live.startswith(lang.live), live
    cost = re.search(lang.cost, live)
    assert cost, live

    assert seen["ok_clicked"] and seen["dialog_closed"], seen
    assert result.error is None, result.error + gimp_tail
    assert result.report is not None, f"the batch never finished: {result.describe()}"
    report = result.report
    assert seen["placed"], f"no {lang.result} layer appeared: {report}"
    assert report["canvas"] == list(CANVAS)
    names = [layer["name"] for layer in report["layers"]]
    assert names == [lang.result, "Photo"], report
    new, photo = report["layers"]
    assert (new["x"], new["y"], new["w"], new["h"]) == (0, 0, *CANVAS)
    assert report["children"] == list(lang.takes), report
    assert new["has_mask"] or lang.takes
    assert (photo["x"], photo["y"], photo["w"], photo["h"]) == LAYER
    # the result is selected, as GIMP's own filters leave theirs
    assert report["selected"] == [lang.result], report
    first = submits[:count]
    # The estimate shown is what fal charged for the output it made.
    assert sum(prices[:count]) == pytest.approx(float(cost[1]), abs=0.0005), (prices, live)
    if not lang.repeat:
        assert len(submits) == count, submits
        return
    # Ctrl+F: the same values again, with the wait window; its Cancel cancels on fal
    assert seen["repeat_wait_window"], f"Ctrl+F showed no wait window: {seen}"
    assert seen["repeat_cancelled"], seen
    again = submits[count:]
    assert len(again) == count, submits
    cancelled = {e["path"].rsplit("/", 2)[-2] for e in cancels}
    assert cancelled == set(again) and not cancelled & set(first), (cancels, submits)
