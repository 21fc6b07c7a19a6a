"""Camera-size canvases in real GIMP 3.0 and 3.2: above fal's 4 MP the result is enlarged.

Two cases, both above 16 MP, run by inside/large.py (the code GIMP runs) against the local
fal server:

* ``camera``: a 24 MP frame without alpha (6000×4000) centred on a 7200×4800 canvas, the
  automatic sides (all four grow); sent at about a third of its size;
* ``grown``: a 5000×3500 layer filling its canvas, 600 pixels asked for on the left and 300
  on top: the canvas grows to 5600×3800 and only those two sides get a seam ramp.

Every rectangle below is written out from the plan and the seam rule (blend 16, and the
result layer's pixels reach ``MARGIN`` further in than the ramp), not taken from the glue.
The undo check runs the ``grown`` case in the full GIMP under Xvfb and presses Ctrl+Z once
(inside/undo_driver.py, as test_plugin_undo.py does).
"""

from __future__ import annotations

import json

import pytest
from flux_outpaint.geometry import Rect, Source
from flux_outpaint.planning import make_plan

from .harness import expected_line, gui_driver, local_server, rle, server_env
from .sandbox import GimpSession

BLEND = 16
MARGIN = 64  # gimp_glue.placement.MARGIN: enlarged pixels beyond the ramp
GIMP_TIMEOUT_S = 600
SCREEN = "1280x960x24"
DRIVER_TIMEOUT_S = 700
WAIT_S = 120  # each of the undo batch's waits for the driver


def _inside_out(width: int, height: int, hole: Rect) -> list[Rect]:
    """``width``×``height`` minus ``hole``, as the rows above and below and the two sides."""
    parts = [
        Rect(0, 0, width, hole.y),
        Rect(0, hole.bottom, width, height - hole.bottom),
        Rect(0, hole.y, hole.x, hole.height),
        Rect(hole.right, hole.y, width - hole.right, hole.height),
    ]
    return [p for p in parts if not p.is_empty]


def _case(name, canvas, layer, alpha, args, reference, sides, source) -> dict:
    """The case for the batch, with what to expect: image coordinates after the run."""
    plan = make_plan(source)
    rect = plan.placement  # the output area starts at the image's corner in both cases
    left, right, top, bottom = sides

    def shrunk(by: int) -> Rect:  # the reference, pulled in on the sides that grew
        x, y, w, h = reference
        x0, y0 = x + by * left, y + by * top
        x1, y1 = x + w - by * right, y + h - by * bottom
        return Rect(x0, y0, x1 - x0, y1 - y0)

    def local(r: Rect) -> Rect:
        inside = r.intersect(rect)
        assert inside is not None
        return inside.translate(-rect.x, -rect.y)

    hidden, deep = local(shrunk(BLEND)), local(shrunk(BLEND + MARGIN))
    inner = shrunk(BLEND)
    x, y, w, h = reference
    return {
        "name": name,
        "canvas": list(canvas),
        "layer": list(layer),
        "alpha": alpha,
        "args": {**args, "seam_blend": BLEND},
        "rect": [rect.x, rect.y, rect.width, rect.height],
        "reference": list(reference),
        "sides": list(sides),
        "hidden": [hidden.x, hidden.y, hidden.width, hidden.height],
        "transparent": [deep.x, deep.y, deep.width, deep.height],
        "filled": [
            [p.x, p.y, p.width, p.height] for p in _inside_out(rect.width, rect.height, deep)
        ],
        "inner": [inner.x, inner.y, inner.width, inner.height],
        "lines": [y + h // 2 - rect.y, x + w // 2 - rect.x],
        # a patch of the ring between the ramp and MARGIN, on the left, halfway down
        "echo": [x + BLEND + 8, y + h // 2 - 50, MARGIN - 16, 100],
    }


CASES = [
    _case(
        "camera",
        (7200, 4800),
        (600, 400, 6000, 4000),
        False,
        {},
        (600, 400, 6000, 4000),
        (1, 1, 1, 1),
        Source(Rect(600, 400, 6000, 4000), 7200, 4800),
    ),
    _case(
        "grown",
        (5000, 3500),
        (0, 0, 5000, 3500),
        True,
        {"expand_left": 600, "expand_top": 300},
        (600, 300, 5000, 3500),
        (1, 0, 1, 0),
        Source(Rect(600, 300, 5000, 3500), 5600, 3800),
    ),
]
OUT_CANVAS = {"camera": [7200, 4800], "grown": [5600, 3800]}
SRC_OFFSETS = {"camera": [600, 400], "grown": [600, 300]}


@pytest.fixture(scope="module", params=["trixie", "forky"], ids=["gimp3.0", "gimp3.2"])
def outcome(request, vendor_dir):
    """One GIMP run per version with both cases; returns (report, submits)."""
    session = GimpSession(request.param, vendor=lambda: vendor_dir)
    try:
        session.install_plugin()
        with local_server() as server:
            result = session.run_batch(
                "large", {"cases": CASES}, env=server_env(server), timeout=900
            )
            report = result.check()
            submits = len(server.submits)
        yield report, submits
    finally:
        session.close()


def test_both_cases_are_above_16_megapixels():
    for case in CASES:
        w, h = OUT_CANVAS[case["name"]]
        assert w * h > 16 * 1024 * 1024
        assert make_plan(Source(Rect(*case["reference"]), w, h)).downscaled


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_result_is_placed_exactly(outcome, case):
    report, _ = outcome
    info = report[case["name"]]
    assert info["ok"], info
    assert info["canvas"] == OUT_CANVAS[case["name"]]
    assert info["rect"] == case["rect"]
    assert info["layers"] == ["Outpaint", "Source"]
    assert info["type"] == "rgba-image"
    assert info["src_offsets"] == SRC_OFFSETS[case["name"]]
    assert info["src_unchanged"]
    assert info["selected"] == ["Outpaint"]
    # the enlarged band is one enlargement of what fal returned, cut nowhere
    assert info["band_equal_one_enlargement"]
    assert info["band_alpha_not_255"] == 0


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_original_shows_exactly_inside_the_seam(outcome, case):
    report, _ = outcome
    info = report[case["name"]]
    assert info["exact"], "original pixels changed outside the seam band"
    assert info["corner_alpha"] == 255
    # the margin inside the ramp carries fal's answer: the original, sent at a third
    assert info["echo_diff"] < 6, info["echo_diff"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_mask_is_zero_inside_and_ramps_only_on_grown_sides(outcome, case):
    report, _ = outcome
    info = report[case["name"]]
    assert info["has_mask"]
    assert info["interior_mask_nonzero"] == 0
    rx, ry, rw, rh = case["reference"]
    nx, ny, nw, nh = case["rect"]
    left, right, top, bottom = case["sides"]
    assert info["mask_row"] == rle(expected_line(nw, rx - nx, rw, left, right, BLEND))
    assert info["mask_col"] == rle(expected_line(nh, ry - ny, rh, top, bottom, BLEND))
    # under the mask's black interior the result layer holds nothing
    assert info["interior_alpha_not_0"] == 0


def test_one_submit_per_case(outcome):
    _, submits = outcome
    assert submits == len(CASES)


def test_enlarged_pixels_sit_on_gimps_pixel_grid(outcome):
    report, _ = outcome
    diffs = report["alignment"]  # mean difference from GIMP's own Linear, per shift
    assert min(diffs, key=diffs.get) == "0,0", diffs
    assert diffs["0,0"] < 3, diffs
    assert min(v for k, v in diffs.items() if k != "0,0") > 2 * diffs["0,0"], diffs


def test_the_reference_is_one_scaling_though_made_in_bands(outcome):
    report, _ = outcome
    assert report["bands"]["equal"], report["bands"]
    assert report["bands"]["same_jpeg"], report["bands"]


def test_one_undo_step_restores_a_camera_size_image(gimp):
    """Full GIMP under Xvfb: the grown case placed, one Ctrl+Z, the image as it was."""
    gimp.install_plugin()
    grown = next(c for c in CASES if c["name"] == "grown")
    with (
        local_server() as server,
        gui_driver(gimp, "undo_driver.py", {"screen": SCREEN}, DRIVER_TIMEOUT_S) as display,
    ):
        result = gimp.run_batch(
            "large:undo",
            {"case": grown, "wait_s": WAIT_S},
            env={**server_env(server), "DISPLAY": display},
            timeout=GIMP_TIMEOUT_S,
            gui=True,
        )
    driver = json.loads((gimp.host_dir / "driver.json").read_text())
    assert driver["failure"] is None, f"the driver gave up: {driver['failure']}"
    assert result.error is None, result.error + result.stderr[-2000:]
    report = result.report
    assert report is not None, f"the batch never finished: {result.describe()}"
    assert driver["pressed"] == 1, "the driver found no image window"
    assert report["ok"] and report["changed"], report
    assert report["size_after"] == [5600, 3800]
    assert report["undo_seen"], f"Ctrl+Z did not remove the Outpaint layer within {WAIT_S} s"
    assert report["undone"], report
    assert report["size_undone"] == [5000, 3500] and report["layers_undone"] == ["Source"]
