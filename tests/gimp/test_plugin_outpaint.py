"""The plug-in end to end in real GIMP 3.0 and 3.2, against the local fal server.

One GIMP start per version runs every placement case (a start costs seconds, a plug-in call
~0.1 s); each test below then checks one case's report.  Expectations are written out here,
not computed by the glue: canvas, layer rectangle, reference, expanded sides, mask profile.
What runs inside GIMP is inside/outpaint_cases.py; each case reaches it as a dict of data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from flux_outpaint.geometry import Rect, Source
from flux_outpaint.planning import make_plan

from .harness import (
    KEY,
    expected_line,
    files_containing,
    local_server,
    one_line,
    rle,
    run,
    server_env,
    words,
)
from .sandbox import GimpSession

BLEND = 16


@dataclass(frozen=True)
class Case:
    name: str
    canvas: tuple[int, int]
    layer: tuple[int, int, int, int]
    # expectations, image coordinates after the run
    out_canvas: tuple[int, int]
    reference: tuple[int, int, int, int]
    sides: tuple[int, int, int, int]  # left, right, top, bottom grew
    new_rect: tuple[int, int, int, int] | None = None  # None: the whole output canvas
    args: dict = field(default_factory=dict)
    base: str = "rgb"
    precision: str = "u8"
    box: tuple[int, int, int, int] | None = None
    group: bool = False
    use_mask: bool = False
    blend: int = BLEND
    recover: bool = False

    @property
    def rect(self) -> tuple[int, int, int, int]:
        return self.new_rect or (0, 0, *self.out_canvas)

    def inner(self) -> tuple[int, int, int, int]:
        """The reference minus the seam band on the sides that grew."""
        x, y, w, h = self.reference
        left, right, top, bottom = (self.blend * s for s in self.sides)
        return (x + left, y + top, w - left - right, h - top - bottom)

    def line(self) -> tuple[int, int]:
        """Mask row and column (layer-local) through the reference's centre."""
        x, y, w, h = self.reference
        return y + h // 2 - self.rect[1], x + w // 2 - self.rect[0]

    def batch_args(self) -> dict:
        """The keyword arguments of ``case`` in inside/outpaint_cases.py."""
        row, col = self.line()
        return {
            "name": self.name,
            "canvas": self.canvas,
            "layer_rect": self.layer,
            "args": {**self.args, "seam_blend": self.blend},
            "base": self.base,
            "precision": self.precision,
            "box": self.box,
            "group": self.group,
            "use_mask": self.use_mask,
            "inner": self.inner(),
            "line_y": row,
            "line_x": col,
            "recover": self.recover,
        }


def _downscaled_rect() -> tuple[int, int, int, int]:
    plan = make_plan(Source(Rect(300, 200, 2000, 1400), 2600, 1800))
    assert plan.downscaled
    p = plan.placement
    return (p.x, p.y, p.width, p.height)


ALL = (1, 1, 1, 1)
CASES = [
    Case(
        "all_sides",
        (800, 560),
        (100, 80, 600, 400),
        (800, 560),
        (100, 80, 600, 400),
        ALL,
        recover=True,
    ),
    Case("one_side", (700, 400), (0, 0, 600, 400), (700, 400), (0, 0, 600, 400), (0, 1, 0, 0)),
    Case("off_canvas", (700, 400), (-50, 0, 600, 400), (700, 400), (0, 0, 550, 400), (0, 1, 0, 0)),
    Case(
        "alpha_margins",
        (600, 400),
        (0, 0, 600, 400),
        (600, 400),
        (100, 50, 400, 300),
        ALL,
        box=(100, 50, 400, 300),
    ),
    Case(
        "numbers_grow",
        (500, 300),
        (0, 0, 500, 300),
        (564, 332),
        (64, 32, 500, 300),
        (1, 0, 1, 0),
        args={"expand_left": 64, "expand_top": 32},
    ),
    Case(
        "hard_edge",
        (700, 400),
        (50, 0, 600, 400),
        (700, 400),
        (50, 0, 600, 400),
        (1, 1, 0, 0),
        blend=0,
    ),
    Case("gray", (400, 300), (50, 40, 300, 200), (400, 300), (50, 40, 300, 200), ALL, base="gray"),
    Case(
        "rgb16",
        (400, 300),
        (50, 40, 300, 200),
        (400, 300),
        (50, 40, 300, 200),
        ALL,
        precision="u16",
    ),
    Case(
        "float",
        (400, 300),
        (50, 40, 300, 200),
        (400, 300),
        (50, 40, 300, 200),
        ALL,
        precision="float",
    ),
    Case(
        "in_group", (400, 300), (50, 40, 300, 200), (400, 300), (50, 40, 300, 200), ALL, group=True
    ),
    Case(
        "mask_drawable",
        (400, 300),
        (50, 40, 300, 200),
        (400, 300),
        (50, 40, 300, 200),
        ALL,
        use_mask=True,
    ),
    Case(
        "downscale",
        (2600, 1800),
        (300, 200, 2000, 1400),
        (2600, 1800),
        (300, 200, 2000, 1400),
        ALL,
        new_rect=_downscaled_rect(),
    ),
]


@pytest.fixture(scope="module", params=["trixie", "forky"], ids=["gimp3.0", "gimp3.2"])
def outcome(request, vendor_dir):
    """One GIMP run per version with every case; returns (report, submits, session files)."""
    session = GimpSession(request.param, vendor=lambda: vendor_dir)
    try:
        session.install_plugin()
        with local_server() as server:
            cases = [case.batch_args() for case in CASES]
            report = run(session, "outpaint_cases", {"cases": cases}, server_env(server))
            submits = len(server.submits)
        leaks = files_containing(session.host_profile, KEY)
        yield report, submits, leaks
    finally:
        session.close()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_places_the_result(outcome, case: Case):
    report, _, _ = outcome
    info = report[case.name]
    assert info["ok"], info
    new = info["new"]
    assert info["canvas"] == list(case.out_canvas)
    assert (new["x"], new["y"], new["w"], new["h"]) == case.rect
    assert new["name"] == "Outpaint"
    assert new["type"] == ("graya-image" if case.base == "gray" else "rgba-image")
    assert new["has_mask"]
    # directly above the source, in the same parent
    assert new["parent"] == info["src"]["parent"] == ("Group" if case.group else None)
    assert new["position"] == info["position_before"]
    assert info["src"]["position"] == info["position_before"] + 1
    assert info["src_unchanged"]
    assert info["selected"] == ["Outpaint"]  # the result, as GIMP's filters leave theirs
    assert info["corner_alpha"] == 255
    assert info["exact"], "original pixels changed outside the seam band"
    # the reference fal got (possibly resampled and JPEG-encoded) is the original's content
    assert info["sent_picks"] > 0 and info["sent_diff"] < 20, info["sent_diff"]
    # the mask: 255 on the new area, a ramp inside the grown borders, 0 inside
    rx, ry, rw, rh = case.reference
    left, right, top, bottom = case.sides
    nx, ny, nw, nh = case.rect
    assert info["mask_row"] == rle(expected_line(nw, rx - nx, rw, left, right, case.blend))
    assert info["mask_col"] == rle(expected_line(nh, ry - ny, rh, top, bottom, case.blend))


def test_source_layer_stays_where_it_was(outcome):
    report, _, _ = outcome
    assert report["off_canvas"]["src_offsets"] == [-50, 0]
    assert report["numbers_grow"]["src_offsets"] == [64, 32]  # moved with the grown canvas
    assert report["mask_drawable"]["src_has_mask"]


def test_image_precision_is_kept(outcome):
    report, _, _ = outcome
    assert "u16" in report["rgb16"]["precision"] or "16" in report["rgb16"]["precision"]
    assert "float" in report["float"]["precision"]


def test_one_submit_per_run(outcome):
    report, submits, _ = outcome
    assert submits == len(CASES) + 1  # + the with-last-values run; recover never submits


def test_with_last_values_runs_without_a_window(outcome):
    report, _, _ = outcome
    assert report["last_values"]["ok"], report["last_values"]
    assert report["last_values"]["layers"] == ["Outpaint", "Source"]


def test_recover_gives_the_same_pixels(outcome):
    report, _, _ = outcome
    back = report["all_sides"]["recover"]
    assert back["ok"], back
    assert back["describe"]["name"] == "Outpaint (recovered)"
    assert (back["describe"]["x"], back["describe"]["y"]) == (0, 0)
    assert back["same_pixels"] and back["same_mask"]
    again = report["all_sides"]["refetch"]
    assert again["cached_files"] == 1
    assert again["ok"] and again["same_pixels"], again


@pytest.mark.parametrize(
    "name, expected",
    [
        ("nothing", "nothing to expand"),
        ("several", "several layers"),
        ("group", "layer group"),
        ("none", "select a layer"),
    ],
)
def test_refusals_are_clear_and_change_nothing(outcome, name, expected):
    report, _, _ = outcome
    info = report[f"refuse_{name}"]
    assert not info["ok"] and info["status"] == "execution-error"
    assert one_line(info["message"]) and expected in words(info["message"])
    assert report["refusals_unchanged"]


def test_key_is_in_no_profile_file_and_no_message(outcome):
    report, _, leaks = outcome
    assert leaks == []
    assert KEY not in repr(report)


def test_text_layer_is_outpainted(gimp):
    gimp.install_plugin()
    with local_server() as server:
        result = gimp.run_batch(
            "outpaint_cases:text_layer", env=server_env(server), load_fonts=True
        )
    report = result.check()
    assert report["is_text"]
    assert report["ok"], report
    assert report["layers"][0] == "Outpaint" and report["layers"][-1] == "Background"
