"""Batches of test_sandbox.py: what the sandboxes' GIMPs can do, probed inside GIMP."""

from __future__ import annotations

import os
import sys

import gi
from reporting import report

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402


def versions(params):
    report(
        gimp=Gimp.version(),
        python=sys.version.split()[0],
        profile=Gimp.directory(),
    )


def export_png(params):
    """A 300×200 image filled with #336699, exported to ``out.png`` in the session folder."""
    img = Gimp.Image.new(300, 200, Gimp.ImageBaseType.RGB)
    layer = Gimp.Layer.new(
        img, "fill", 300, 200, Gimp.ImageType.RGB_IMAGE, 100.0, Gimp.LayerMode.NORMAL
    )
    img.insert_layer(layer, None, 0)
    Gimp.context_push()
    Gimp.context_set_foreground(Gegl.Color.new("#336699"))
    layer.fill(Gimp.FillType.FOREGROUND)
    Gimp.context_pop()
    proc = Gimp.get_pdb().lookup_procedure("file-png-export")
    cfg = proc.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    cfg.set_property("image", img)
    cfg.set_property("file", Gio.File.new_for_path(os.path.join(params["session_dir"], "out.png")))
    status = proc.run(cfg).index(0)
    img.delete()
    report(status=status.value_nick)


def call_probe(params):
    """Call the probe plug-in (probe_plugin/) ``params["procedure"]`` with ``params["url"]``."""
    proc = Gimp.get_pdb().lookup_procedure(params["procedure"])
    cfg = proc.create_config()
    cfg.set_property("url", params["url"])
    values = proc.run(cfg)
    report(status=values.index(0).value_nick, facts=values.index(1))


def fail(params):
    """Reports, then raises: the host must get both back."""
    report(before=1)
    raise ValueError("sandbox probe failure")
