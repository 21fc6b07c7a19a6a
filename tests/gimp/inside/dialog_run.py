"""Batch of test_plugin_dialog.py: one interactive run (DISPLAY set, gimp-console), so the
plug-in opens its windows; the driver answers them.  ``params``: optionally ``args`` (more
arguments of the plug-in, e.g. ``{"variations": 3}``) and ``repeat``: first a script's run
(no window), then Repeat as Filters ▸ Repeat (Ctrl+F) calls it: last values, on what is
selected then (the first run's result)."""

from __future__ import annotations

import gi
from prelude import make_image, outpaint, snapshot
from reporting import report

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402


def main(params):
    img, layer = make_image(400, 300, 50, 40, 300, 200)
    img.set_selected_layers([layer])
    first = None
    if params.get("repeat"):
        first = outpaint(img, [layer])["status"]
        layer = img.get_selected_layers()[0]  # the result, selected
    before = snapshot(img)
    if params.get("repeat"):
        r = outpaint(img, [layer], run_mode=Gimp.RunMode.WITH_LAST_VALS)
    else:
        # the first interactive run in a fresh profile takes the caller's values
        r = outpaint(img, [layer], run_mode=Gimp.RunMode.INTERACTIVE, **params.get("args", {}))
    report(
        first=first,
        selected_before=layer.get_name(),
        status=r["status"],
        message=r["message"],
        layers=[x.get_name() for x in img.get_layers()],
        unchanged=snapshot(img) == before,
    )
