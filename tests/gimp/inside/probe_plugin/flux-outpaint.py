#!/usr/bin/env python3
"""A stand-in plug-in for test_sandbox.py, installed by install.py's code under the real
plug-in's name: it registers ``flux-outpaint-sandbox-probe``, which fetches its ``url``
argument with the vendored httpx and returns what it saw as JSON."""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor"))
import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, GObject  # noqa: E402

PROBE_PROC = "flux-outpaint-sandbox-probe"


class Probe(Gimp.PlugIn):
    def do_set_i18n(self, name):
        return False

    def do_query_procedures(self):
        return [PROBE_PROC]

    def do_create_procedure(self, name):
        proc = Gimp.Procedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run, None)
        proc.set_documentation("Sandbox probe", None, name)
        proc.set_attribution("flux-outpaint", "flux-outpaint", "2026")
        proc.add_string_argument("url", "URL", None, "", GObject.ParamFlags.READWRITE)
        proc.add_string_return_value("facts", "Facts", None, "", GObject.ParamFlags.READWRITE)
        return proc

    def run(self, procedure, config, data):
        import httpx

        with httpx.Client(timeout=10) as client:
            echo = client.get(config.get_property("url")).json()
        facts = json.dumps(
            {
                "httpx": httpx.__file__,
                "echo": echo,
                "python": ".".join(map(str, sys.version_info[:2])),
            }
        )
        values = procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, None)
        values.remove(1)
        values.insert(1, GObject.Value(GObject.TYPE_STRING, facts))
        return values


Gimp.main(Probe.__gtype__, sys.argv)
