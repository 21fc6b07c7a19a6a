"""Batch of test_plugin_language.py: what a person whose GIMP runs in another language reads.

``params``: ``key`` (written to the key file between the runs).  Reports the outpaint
procedure's menu label and blurb as GIMP registered them, the message of a run with no key
configured, then (with the key file written) the message of a run whose job fails on fal.
"""

from __future__ import annotations

import os

import gi
from prelude import make_image, outpaint
from reporting import report

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402


def main(params):
    proc = Gimp.get_pdb().lookup_procedure("plug-in-flux-outpaint")
    recover = Gimp.get_pdb().lookup_procedure("plug-in-flux-outpaint-recover")
    img, layer = make_image(400, 300, 50, 40, 300, 200)
    img.set_selected_layers([layer])
    no_key = outpaint(img, [layer])
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.environ["HOME"], ".config")
    folder = os.path.join(config, "flux-outpaint")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    path = os.path.join(folder, "fal-key")
    with open(path, "w") as out:
        out.write(params["key"] + "\n")
    os.chmod(path, 0o600)
    failed = outpaint(img, [layer])
    report(
        menu_label=proc.get_menu_label(),
        blurb=proc.get_blurb(),
        recover_label=recover.get_menu_label(),
        no_key=no_key["message"],
        no_key_status=no_key["status"],
        failed=failed["message"],
        failed_status=failed["status"],
        layers=[x.get_name() for x in img.get_layers()],
    )
