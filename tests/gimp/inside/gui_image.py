"""Batch of test_plugin_gui.py, in the full GIMP: the image the person works on.

``params``: ``canvas`` [w, h], ``layer`` [x, y, w, h], ``wait_s`` (how long the driver may
take), ``result`` (the result layer's or group's name, in the language GIMP runs in).
Shows the image in a window, writes ``ready``, notes when the result layer appears
(``placed``), and once the driver writes ``driver-done`` reports the image (with the takes in
a group, and what is selected).  A landscape rather than the test pattern: this is the image
the README's dialog picture shows behind the dialog.
"""

from __future__ import annotations

import math
import os
import time

import gi
from prelude import describe, write
from reporting import report

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402

POLL_S = 0.2


def landscape(w, h):
    def mix(a, b, t):
        return tuple(p + (q - p) * t for p, q in zip(a, b, strict=True))

    sun_x, sun_y, sun_r = w * 0.7, h * 0.26, h * 0.065
    ridge = [
        h * (0.47 + 0.07 * math.sin(x / w * 6.5 + 1.2) + 0.025 * math.sin(x / w * 23.0))
        for x in range(w)
    ]
    hills = [
        h * (0.66 + 0.05 * math.sin(x / w * 3.7 + 0.5) + 0.012 * math.sin(x / w * 37.0))
        for x in range(w)
    ]
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
                c = mix(
                    mix((112, 124, 152), (62, 74, 98), min(1.0, depth)),
                    (236, 240, 246),
                    snow * 0.85,
                )
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


def main(params):
    session = params["session_dir"]
    cw, ch = params["canvas"]
    lx, ly, lw, lh = params["layer"]
    img = Gimp.Image.new(cw, ch, Gimp.ImageBaseType.RGB)
    layer = Gimp.Layer.new(
        img, "Photo", lw, lh, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL
    )
    img.insert_layer(layer, None, 0)
    layer.set_offsets(lx, ly)
    write(layer, landscape(lw, lh), lw, lh)
    img.set_selected_layers([layer])
    img.clean_all()
    Gimp.Display.new(img)
    Gimp.displays_flush()
    with open(os.path.join(session, "ready"), "w") as out:
        out.write("1")

    placed = False
    driver_done = os.path.join(session, "driver-done")
    deadline = time.monotonic() + params["wait_s"]
    try:
        while not os.path.exists(driver_done):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the driver did not finish within {params['wait_s']} s")
            if not placed and any(x.get_name() == params["result"] for x in img.get_layers()):
                placed = True
                with open(os.path.join(session, "placed"), "w") as out:
                    out.write("1")
            time.sleep(POLL_S)
        report(
            canvas=[img.get_width(), img.get_height()],
            layers=[describe(x, img) for x in img.get_layers()],
            children=[
                x.get_name()
                for item in img.get_layers()
                if item.is_group()
                for x in item.get_children()
            ],
            selected=[x.get_name() for x in img.get_selected_layers()],
        )
    finally:
        img.clean_all()  # --quit must not stop at "discard changes?"
