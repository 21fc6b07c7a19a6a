#!/usr/bin/env python3
"""GIMP 3 entry point of flux-outpaint: registration only.

Filters ▸ Generative ▸ Outpaint (FLUX.2 pro)… and Recover last outpaint result.  What the
procedures do lives in ``gimp_glue``; the pure core is ``flux_outpaint``.

GIMP starts this file as a new process for every call.  For a call (``-run``) the network
half is prepared in the background at once (``gimp_glue.prefetch_network``), and when GIMP
has the results the process ends without the interpreter's teardown.
"""

from __future__ import annotations

import contextlib
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
# vendor/ first so a distro or user-site httpx can never shadow the pinned one; then our own
# folder, which GIMP's Python does not always put on sys.path when started by GIMP.
sys.path[:0] = [os.path.join(_HERE, "vendor"), _HERE]

import gi  # noqa: E402

gi.require_version("Gimp", "3.0")
import gimp_glue  # noqa: E402
from flux_outpaint import payload  # noqa: E402
from flux_outpaint.framing import AUTO  # noqa: E402
from flux_outpaint.planning import MAX_EXPAND, MAX_VARIATIONS  # noqa: E402
from flux_outpaint.seam import DEFAULT_BLEND, MAX_BLEND  # noqa: E402
from gi.repository import Gimp, GObject  # noqa: E402
from gimp_glue import procedure  # noqa: E402

if "-run" in sys.argv:  # a call, not GIMP's start-up query: the network half comes next
    gimp_glue.prefetch_network()

RW = GObject.ParamFlags.READWRITE
MENU = "<Image>/Filters/Generative"


def _choice(*items: tuple[str, str]) -> Gimp.Choice:
    choice = Gimp.Choice.new()
    for number, (nick, label) in enumerate(items):
        choice.add(nick, number, label, "")
    return choice


def _add_outpaint_arguments(proc: Gimp.Procedure) -> None:
    # Mnemonics avoid those of the dialog's own buttons (Load, Save, Reset, Help, Cancel, OK).
    for side, label in (
        ("left", "L_eft"),
        ("right", "Ri_ght"),
        ("top", "_Top"),
        ("bottom", "_Bottom"),
    ):
        proc.add_int_argument(
            f"expand-{side}",
            label,
            f"Pixels to add on the {side} (-1 = automatic: from the canvas "
            "or the layer's transparent margins)",
            AUTO,
            MAX_EXPAND,
            AUTO,
            RW,
        )
    proc.add_choice_argument(
        "mode",
        "_Mode",
        "high: best quality; fast: quicker, cheaper",
        _choice(*((mode, mode.capitalize()) for mode in payload.MODES)),
        payload.DEFAULT_MODE,
        RW,
    )
    proc.add_choice_argument(
        "output-format",
        "_Format",
        "Image format fal returns",
        _choice(*((fmt, fmt.upper()) for fmt in payload.OUTPUT_FORMATS)),
        payload.DEFAULT_OUTPUT_FORMAT,
        RW,
    )
    proc.add_boolean_argument(
        "safety-checker", "Safety chec_ker", "Ask fal to reject unsafe content", True, RW
    )
    proc.add_int_argument(
        "seam-blend",
        "Seam ble_nd",
        "Pixels inside the original border over which the new pixels fade in (0 = hard edge)",
        0,
        MAX_BLEND,
        DEFAULT_BLEND,
        RW,
    )
    proc.add_boolean_argument(
        "color-match",
        "Color m_atch",
        "Correct the colour and tone drift of the new pixels, measured where the result "
        "covers the original",
        True,
        RW,
    )
    proc.add_boolean_argument(
        "grain-match",
        "Gra_in match",
        "Where the result had to be enlarged (canvases over 4 MP), add grain matching the "
        "original's to the new pixels",
        True,
        RW,
    )
    proc.add_int_argument(
        "variations",
        "_Variations",
        "Takes to choose from: one request each, each billed; more than 1 gives a layer group "
        "with one layer per take, the first visible",
        1,
        MAX_VARIATIONS,
        1,
        RW,
    )
    proc.add_layer_return_value(
        "layer", "Layer", "The new outpaint layer (a layer group when variations > 1)", False, RW
    )


class FluxOutpaint(Gimp.PlugIn):  # type: ignore[misc]  # GObject introspection: untyped
    def do_set_i18n(self, name: str) -> bool:
        return False

    def do_query_procedures(self) -> list[str]:
        return [procedure.OUTPAINT, procedure.RECOVER]

    def do_create_procedure(self, name: str) -> Gimp.Procedure:
        run = procedure.run_outpaint if name == procedure.OUTPAINT else procedure.run_recover
        proc = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        proc.set_image_types("RGB*, GRAY*")
        proc.set_attribution("flux-outpaint", "flux-outpaint", "2026")
        if name == procedure.OUTPAINT:
            proc.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
            proc.set_menu_label("Outpaint (FLUX.2 pro)…")
            proc.add_menu_path(MENU)
            proc.set_documentation(
                "Expand the image beyond its borders with FLUX.2 [pro] on fal.ai",
                "Fills the canvas around the layer (or its transparent margins, or the given "
                "number of pixels per side) with new content, as a new masked layer above it. "
                "The fal API key comes from FAL_KEY or the key file, never from an argument.",
                name,
            )
            _add_outpaint_arguments(proc)
        else:
            mask = Gimp.ProcedureSensitivityMask
            proc.set_sensitivity_mask(mask.DRAWABLE | mask.DRAWABLES | mask.NO_DRAWABLES)
            proc.set_menu_label("Recover last outpaint result")
            proc.add_menu_path(MENU)
            proc.set_documentation(
                "Put the most recent completed outpaint result into a new layer",
                "Reads the result from the local cache, or fetches it again from fal by its "
                "request id (request-id empty = the most recent one).",
                name,
            )
            proc.add_string_argument(
                "request-id", "Request id", "fal request id (empty = the most recent)", "", RW
            )
            proc.add_layer_return_value("layer", "Layer", "The recovered layer", False, RW)
        return proc


status = Gimp.main(FluxOutpaint.__gtype__, sys.argv)
# GIMP has the results and waits for this process to end: skip the interpreter's teardown of
# everything the run left in memory (up to a few tenths of a second on a big canvas).
for stream in (sys.stdout, sys.stderr):
    with contextlib.suppress(AttributeError, OSError, ValueError):  # None, closed, broken
        stream.flush()
os._exit(status)
