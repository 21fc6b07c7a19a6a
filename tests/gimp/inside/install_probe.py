"""Batch of test_install_gimp.py: is the plug-in registered, and does one run work?"""

from __future__ import annotations

from prelude import PDB, make_image, outpaint
from reporting import report


def main(params):
    exists = PDB.procedure_exists("plug-in-flux-outpaint")
    report(
        registered=exists,
        recover_registered=PDB.procedure_exists("plug-in-flux-outpaint-recover"),
    )
    if exists:
        img, layer = make_image(160, 96, 32, 0, 96, 96)
        out = outpaint(img, [layer])
        report(
            ok=out["ok"],
            message=out["message"],
            layers=[x.get_name() for x in img.get_layers()],
        )
