"""Awkward image states in real GIMP 3.0 and 3.2: each works, or is refused cleanly.

"Works" means the result layer is where it belongs: its rectangle, the canvas, its place in
the layer stack, its seam mask, and every layer that was there untouched.  "Refused" means
one clear line and the image exactly as it was, undo history included: the image is made
clean before the run and must still be clean after it (any undo step would dirty it).

One GIMP start per version runs every state.  The key comes from the per-user key file, so
the batch can remove it or put a wrong one there between states; the unreachable server is
the local one, stopped by the host when the batch asks (see ``SwitchedServer``).  The batch
is inside/bad_inputs.py; each state reaches it as data (a builder's name and arguments).

With ``FLUX_OUTPAINT_BADINPUT_OUT=FILE`` every state appends its ``bad_input_matrix.Row``;
``python scripts/bad_input_matrix.py FILE --write docs/bad-input-matrix.md`` makes the table.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

import pytest
from flux_outpaint.geometry import Rect, Source
from flux_outpaint.planning import make_plan
from script_modules import script

from .harness import (
    KEY,
    files_containing,
    one_line,
    ramp,
    server_env,
    words,
)
from .sandbox import GimpSession
from .test_plugin_fault_matrix import SWITCH_PARAMS, SwitchedServer, path_name

bad_input_matrix = script("bad_input_matrix")
OUT_ENV = "FLUX_OUTPAINT_BADINPUT_OUT"
BLEND = 16  # the seam-blend default
WRONG_KEY = "wrong-key-0000"


@dataclass(frozen=True)
class State:
    name: str
    title: str
    # a builder in inside/bad_inputs.py and its arguments: it returns (image, drawables,
    # source layer)
    build: tuple
    args: dict = field(default_factory=dict)
    refusal: str = ""  # the message holds this (lower case); "" = the state works
    key: str | None = KEY
    stop_server: bool = False
    # when it works (image coordinates after the run):
    canvas: tuple[int, int] = (400, 300)
    rect: tuple[int, int, int, int] | None = None  # None = the whole canvas
    source_at: tuple[int, int] = (50, 40)
    sides: tuple[int, int, int, int] = (1, 1, 1, 1)  # left, right, top, bottom grew
    stack: tuple[str, ...] = ("Outpaint", "Source")
    layer_type: str = "rgba-image"
    defect: str = ""  # a known plug-in defect: the case is xfail(strict) and says why

    @property
    def works(self) -> bool:
        return not self.refusal

    @property
    def result_rect(self) -> tuple[int, int, int, int]:
        return self.rect or (0, 0, *self.canvas)


def planned(canvas: tuple[int, int], reference: tuple[int, int, int, int]) -> tuple:
    """Where a resampled result lands: the core's plan (the glue only follows it)."""
    plan = make_plan(Source(Rect(*reference), *canvas))
    assert plan.resampled
    p = plan.placement
    return (p.x, p.y, p.width, p.height)


STATES = [
    State("rgb_u8", "RGB 8-bit, canvas margins all round", ("plain", 400, 300, 50, 40, 300, 200)),
    State(
        "gray",
        "grayscale image",
        ("plain", 400, 300, 50, 40, 300, 200, "gray"),
        layer_type="graya-image",
    ),
    State("rgb_u16", "RGB 16-bit integer", ("plain", 400, 300, 50, 40, 300, 200, "rgb", "u16")),
    State(
        "rgb_float",
        "RGB 32-bit float, linear light",
        ("plain", 400, 300, 50, 40, 300, 200, "rgb", "float"),
    ),
    State(
        "indexed",
        "indexed image, called from a script (its menu item is greyed out)",
        ("indexed",),
        layer_type="indexeda-image",
    ),
    State("group", "a layer group selected", ("group",), refusal="is a layer group"),
    State(
        "text",
        "a text layer",
        ("text",),
        canvas=(400, 200),
        source_at=(20, 20),
        stack=("Outpaint", "Text", "Background"),
    ),
    State("hidden", "a hidden layer: it stays hidden, the result is visible", ("hidden",)),
    State("locked_pixels", "pixels and alpha locked", ("locked_pixels",)),
    State(
        "locked_position",
        "position locked, the canvas grows 32 left and 16 up",
        ("locked_position",),
        args={"expand_left": 32, "expand_top": 16},
        canvas=(332, 216),
        source_at=(32, 16),
        sides=(1, 0, 1, 0),
    ),
    State(
        "locked_group",
        "a layer in a group whose pixels are locked, 64 px added right",
        ("locked_group",),
        args={"expand_right": 64},
        refusal="locked",
    ),
    State("mask_selected", "the layer's mask selected, being edited", ("mask_selected",)),
    State("with_mask", "a layer with a black mask, the layer selected", ("with_mask",)),
    State("several", "two layers selected", ("several",), refusal="several layers"),
    State(
        "nothing_selected", "no drawable passed", ("nothing_selected",), refusal="select a layer"
    ),
    State(
        "tiny_on_canvas",
        "a 1×1 layer centred on a 65×65 canvas",
        ("plain", 65, 65, 32, 32, 1, 1),
        canvas=(65, 65),
        source_at=(32, 32),
    ),
    State(
        "tiny_image_grown",
        "a 1×1 image grown 16 px per side (sent upscaled)",
        ("plain", 1, 1, 0, 0, 1, 1),
        args={"expand_left": 16, "expand_right": 16, "expand_top": 16, "expand_bottom": 16},
        canvas=(33, 33),
        rect=planned((33, 33), (16, 16, 1, 1)),
        source_at=(16, 16),
    ),
    State(
        "zero_expansion",
        "the layer fills the canvas, no margins, no numbers",
        ("plain", 300, 200, 0, 0, 300, 200),
        refusal="nothing to expand",
    ),
    State(
        "over_2048_per_side",
        "3000 px of canvas left of the layer (sent downscaled)",
        ("plain", 3512, 512, 3000, 0, 512, 512),
        canvas=(3512, 512),
        rect=planned((3512, 512), (3000, 0, 512, 512)),
        source_at=(3000, 0),
        sides=(1, 0, 0, 0),
    ),
    State(
        "over_4_mp",
        "a 2600×1700 canvas, 4.4 MP (sent downscaled)",
        ("plain", 2600, 1700, 300, 250, 2000, 1200),
        canvas=(2600, 1700),
        rect=planned((2600, 1700), (300, 250, 2000, 1200)),
        source_at=(300, 250),
    ),
    State(
        "too_lopsided",
        "an 8000×64 canvas around a 64×64 layer",
        ("plain", 8000, 64, 3968, 0, 64, 64),
        refusal="cannot fit fal's limits",
    ),
    State(
        "background_no_alpha",
        "an alpha-less background layer, 64 px added right",
        ("background",),
        args={"expand_right": 64},
        canvas=(364, 200),
        source_at=(0, 0),
        sides=(0, 1, 0, 0),
        stack=("Outpaint", "Background"),
    ),
    State(
        "floating_selection",
        "a floating selection selected: it stays floating",
        ("floating",),
        canvas=(200, 150),
        source_at=(30, 30),
        stack=("Outpaint", "Floating", "Source"),
    ),
    State(
        "channel",
        "a channel passed as the drawable",
        ("channel",),
        refusal="channels cannot be outpainted",
    ),
    State(
        "selection",
        "the selection mask passed as the drawable",
        ("selection",),
        refusal="channels cannot be outpainted",
    ),
    State(
        "outside_canvas",
        "a layer entirely off the canvas",
        ("plain", 300, 200, 400, 0, 100, 100),
        refusal="outside the canvas",
    ),
    State(
        "fully_transparent",
        "a fully transparent layer filling the canvas",
        ("transparent",),
        refusal="fully transparent",
    ),
    State(
        "no_key",
        "no fal API key anywhere",
        ("plain", 400, 300, 50, 40, 300, 200),
        key=None,
        refusal="no fal api key",
    ),
    State(
        "wrong_key",
        "a key fal does not accept",
        ("plain", 400, 300, 50, 40, 300, 200),
        key=WRONG_KEY,
        refusal="rejected the api key",
    ),
    # last: the server stays stopped
    State(
        "unreachable",
        "the fal server cannot be reached",
        ("plain", 400, 300, 50, 40, 300, 200),
        stop_server=True,
        refusal="could not reach",
    ),
]


def batch_params() -> dict:
    """What inside/bad_inputs.py gets: every state as data, in order."""
    return {
        "key": KEY,
        "switch": SWITCH_PARAMS,
        "states": [
            {
                "name": s.name,
                "build": s.build,
                "args": s.args,
                "key": s.key,
                "stop_server": s.stop_server,
            }
            for s in STATES
        ],
    }


def expected_mask(
    point: tuple[int, int], reference: tuple[int, int, int, int], sides: tuple[int, int, int, int]
) -> int:
    """The documented seam mask at one image point: 255 outside the original, inside it the
    ramp of each grown side within BLEND pixels of that side, else 0."""
    x, y = point
    rx, ry, rw, rh = reference
    if not (rx <= x < rx + rw and ry <= y < ry + rh):
        return 255
    left, right, top, bottom = sides
    value = 0
    for grew, distance in (
        (left, x - rx),
        (right, rx + rw - 1 - x),
        (top, y - ry),
        (bottom, ry + rh - 1 - y),
    ):
        if grew and distance < BLEND:
            value = max(value, ramp(BLEND)[distance])
    return value


def unchanged(info: dict) -> bool:
    return info["kept"] if info["ok"] else info["same"] and not info["dirty"]


def record(session: GimpSession, report: dict) -> None:
    target = os.environ.get(OUT_ENV)
    if not target:
        return
    with open(target, "a", encoding="utf-8") as out:
        for s in STATES:
            info = report[s.name]
            row = bad_input_matrix.Row(
                s.name,
                s.title,
                path_name(session),
                "works" if s.works else "refused",
                bool(info["ok"]),
                bad_input_matrix.stable(info["message"] or ""),
                unchanged(info),
                s.defect,
            )
            out.write(json.dumps(asdict(row), ensure_ascii=False) + "\n")


@pytest.fixture(scope="module", params=["trixie", "forky"], ids=["gimp3.0", "gimp3.2"])
def outcome(request, vendor_dir):
    """Every state in one GIMP run: (report, submits per state, profile leaks)."""
    session = GimpSession(request.param, vendor=lambda: vendor_dir)
    try:
        session.install_plugin()
        with SwitchedServer(session) as server:
            env = server_env(server, key=None)  # the key file, not FAL_KEY, so it can change
            result = session.run_batch(
                "bad_inputs", batch_params(), env=env, timeout=600, load_fonts=True
            )
        report = result.check()
        record(session, report)
        yield report, server.submits, files_containing(session.host_profile, KEY)
    finally:
        session.close()


def _param(state: State):
    marks = [pytest.mark.xfail(strict=True, reason=state.defect)] if state.defect else []
    return pytest.param(state, marks=marks, id=state.name)


@pytest.mark.parametrize("state", [_param(s) for s in STATES])
def test_state(outcome, state: State):
    report, submits, _ = outcome
    info = report[state.name]
    assert info["undo_enabled"], "undo is off: 'clean' would prove nothing"
    # one paid job per result; a refusal happens before anything is billed
    assert submits[state.name] == (1 if state.works else 0), submits[state.name]
    if not state.works:
        assert not info["ok"] and info["status"] == "execution-error", info
        assert one_line(info["message"]), info
        assert state.refusal in words(info["message"]), info["message"]
        assert info["same"], "the image changed"
        assert not info["dirty"], "an undo step was left behind"
        return
    assert info["ok"], info
    new, src = info["new"], info["src"]
    assert info["canvas"] == list(state.canvas)
    assert (new["x"], new["y"], new["w"], new["h"]) == state.result_rect
    assert new["name"] == "Outpaint" and new["has_mask"] and info["new_visible"]
    assert new["type"] == state.layer_type
    assert new["parent"] == src["parent"]
    assert info["stack"] == list(state.stack)
    assert (src["x"], src["y"]) == state.source_at
    assert info["kept"], "a layer that was there changed"
    assert info["src_flags_kept"], "the source's visibility, locks or kind changed"
    assert info["selected"] == ["Outpaint"]  # the result, as GIMP's filters leave theirs
    reference = (*state.source_at, src["w"], src["h"])
    for name, (x, y, value) in info["mask"].items():
        assert value == expected_mask((x, y), reference, state.sides), (name, x, y, value)


def test_key_in_no_message_and_no_profile_file(outcome):
    report, _, leaks = outcome
    assert KEY not in repr(report)
    assert leaks == []
