"""Where the new pixels go on an image and where the returned picture lands (flux_outpaint.framing).

Tables of layer/canvas situations with their expectations written out, so the plug-in's
decisions are pinned here without GIMP; the real-GIMP tests then check only that the glue
applies them.
"""

from __future__ import annotations

import pytest
from flux_outpaint.errors import InputError, ResultError
from flux_outpaint.framing import (
    AUTO,
    Automatic,
    Growth,
    Placement,
    automatic,
    check_size,
    frame,
    prefill,
    requested_expansion,
)
from flux_outpaint.geometry import Expansion, Rect, Source
from flux_outpaint.planning import make_plan
from flux_outpaint.seam import ramp


def opaque(visible: Rect) -> Rect:
    return Rect(0, 0, visible.width, visible.height)


def never(visible: Rect) -> Rect | None:
    raise AssertionError("the alpha scan is not needed when the canvas decides")


@pytest.mark.parametrize(
    ("canvas", "layer", "mode", "reference", "expansion"),
    [
        # the canvas reaches beyond the layer: its margins are the expansion
        (
            (800, 560),
            Rect(100, 80, 600, 400),
            "canvas",
            Rect(100, 80, 600, 400),
            Expansion(100, 100, 80, 80),
        ),
        ((700, 400), Rect(0, 0, 600, 400), "canvas", Rect(0, 0, 600, 400), Expansion(0, 100, 0, 0)),
        # a layer sticking out on the left: only its visible part is the reference
        (
            (700, 400),
            Rect(-50, 0, 600, 400),
            "canvas",
            Rect(0, 0, 550, 400),
            Expansion(0, 150, 0, 0),
        ),
        # a layer larger than the canvas on every side: nothing around it
        ((300, 200), Rect(-10, -10, 320, 220), "numbers", Rect(0, 0, 300, 200), Expansion()),
    ],
)
def test_automatic_from_the_canvas(canvas, layer, mode, reference, expansion):
    scan = never if mode == "canvas" else opaque
    auto = automatic(*canvas, layer, scan)
    assert (auto.mode, auto.reference, auto.expansion) == (mode, reference, expansion)


def test_automatic_from_transparent_margins():
    auto = automatic(600, 400, Rect(0, 0, 600, 400), lambda v: Rect(100, 50, 400, 300))
    assert auto == Automatic("alpha", Rect(100, 50, 400, 300), Expansion(100, 100, 50, 50))
    assert "transparent margins" in auto.describe()


@pytest.mark.parametrize(
    ("layer", "scan", "message"),
    [
        (Rect(700, 0, 100, 100), opaque, "outside the canvas"),
        (Rect(0, 0, 300, 200), lambda v: None, "fully transparent"),
    ],
)
def test_automatic_refusals(layer, scan, message):
    with pytest.raises(InputError, match=message):
        automatic(300, 200, layer, scan)


AUTO_CANVAS = Automatic("canvas", Rect(100, 80, 600, 400), Expansion(100, 100, 80, 80))
FILLS = Automatic("numbers", Rect(0, 0, 500, 300), Expansion())


@pytest.mark.parametrize(
    ("auto", "values", "expected"),
    [
        (AUTO_CANVAS, {}, Expansion(100, 100, 80, 80)),
        (AUTO_CANVAS, {"left": 0, "top": AUTO}, Expansion(0, 100, 80, 80)),
        (AUTO_CANVAS, {"right": 300}, Expansion(100, 300, 80, 80)),
        (FILLS, {"left": 64, "top": 32}, Expansion(64, 0, 32, 0)),
    ],
)
def test_requested_expansion(auto, values, expected):
    assert requested_expansion(auto, values) == expected


def test_requested_expansion_refuses_below_auto():
    with pytest.raises(InputError, match="expand-left"):
        requested_expansion(AUTO_CANVAS, {"left": -2})


@pytest.mark.parametrize(
    ("auto", "canvas", "values", "source", "origin", "growth"),
    [
        # inside the canvas: no growth, the output area is the canvas
        (AUTO_CANVAS, (800, 560), {}, Source(Rect(100, 80, 600, 400), 800, 560), (0, 0), None),
        # fewer pixels than the canvas offers: the output area is smaller than the canvas
        (
            AUTO_CANVAS,
            (800, 560),
            {"left": 10, "right": 0, "top": 0, "bottom": 0},
            Source(Rect(10, 0, 600, 400), 610, 400),
            (90, 80),
            None,
        ),
        # numbers beyond the canvas: it grows, old content moves right and down
        (
            FILLS,
            (500, 300),
            {"left": 64, "top": 32},
            Source(Rect(64, 32, 500, 300), 564, 332),
            (0, 0),
            Growth(564, 332, 64, 32),
        ),
        (
            FILLS,
            (500, 300),
            {"right": 100},
            Source(Rect(0, 0, 500, 300), 600, 300),
            (0, 0),
            Growth(600, 300, 0, 0),
        ),
    ],
)
def test_frame(auto, canvas, values, source, origin, growth):
    framed = frame(auto, *canvas, values)
    assert (framed.source, framed.origin, framed.growth) == (source, origin, growth)
    # the reference, placed through the origin, is the original where it now is
    shift = (growth.offset_x, growth.offset_y) if growth else (0, 0)
    assert source.reference.translate(*origin) == auto.reference.translate(*shift)


@pytest.mark.parametrize(
    ("auto", "maximum", "expected"),
    [
        (AUTO_CANVAS, 2048, {"left": 100, "right": 100, "top": 80, "bottom": 80}),
        (
            Automatic("canvas", Rect(3000, 0, 10, 10), Expansion(3000, 0, 0, 0)),
            2048,
            {"left": AUTO, "right": 0, "top": 0, "bottom": 0},
        ),
        (FILLS, 2048, {}),
    ],
)
def test_prefill(auto, maximum, expected):
    assert prefill(auto, maximum) == expected


def test_placement_of_a_plan_at_full_resolution():
    plan = make_plan(Source(Rect(100, 80, 600, 400), 800, 560))
    where = Placement.from_plan(plan, 4, origin=(10, 20), growth=Growth(820, 580, 10, 20))
    assert where.rect == Rect(10, 20, 800, 560)
    assert where.reference == Rect(110, 100, 600, 400)
    assert where.sides == Expansion(1, 1, 1, 1)
    mask = where.mask()
    row = mask[(100 + 200 - 20) * 800 : (100 + 200 - 20 + 1) * 800]  # through the middle
    assert list(row[:100]) == [255] * 100
    assert list(row[100:104]) == ramp(4)
    assert set(row[104:696]) == {0}
    assert list(row[696:700]) == ramp(4)[::-1]
    assert list(row[700:]) == [255] * 100


def test_placement_mask_over_an_area_is_the_same_mask_cut_out():
    plan = make_plan(Source(Rect(0, 30, 200, 100), 260, 160))
    where = Placement.from_plan(plan, 8)
    full, part = where.mask(), where.mask(where.reference)
    ref = where.reference
    cut = b"".join(
        full[(ref.y + y) * 260 + ref.x : (ref.y + y) * 260 + ref.right] for y in range(ref.height)
    )
    assert part == cut
    middle = part[50 * 200 : 51 * 200]
    assert middle[:8] == bytes(8)  # the left side did not grow: no ramp there
    assert list(middle[-8:]) == ramp(8)[::-1]  # the right side did


def test_placement_of_a_downscaled_plan_covers_the_canvas():
    plan = make_plan(Source(Rect(300, 200, 2000, 1400), 2600, 1800))
    where = Placement.from_plan(plan, 16)
    assert plan.downscaled
    assert where.rect.x <= 0 and where.rect.y <= 0
    assert where.rect.right >= 2600 and where.rect.bottom >= 1800


SHOWN_CASES = [
    # rect, reference (image coordinates), sides grown (l, r, t, b), blend
    (Rect(0, 0, 800, 560), Rect(100, 80, 600, 400), Expansion(1, 1, 1, 1), 16),
    (Rect(0, 0, 700, 400), Rect(0, 0, 600, 400), Expansion(0, 1, 0, 0), 16),
    (Rect(-1, -2, 7201, 4805), Rect(600, 400, 6000, 4000), Expansion(1, 1, 1, 1), 16),
    (Rect(10, 20, 300, 200), Rect(60, 20, 200, 200), Expansion(1, 1, 0, 0), 0),
    (Rect(0, 0, 120, 90), Rect(-30, 10, 100, 60), Expansion(0, 1, 1, 1), 8),  # sticks out
    (Rect(0, 0, 60, 50), Rect(10, 10, 40, 30), Expansion(1, 1, 1, 1), 20),  # all ramp
    (Rect(0, 0, 90, 70), Rect(0, 0, 0, 0), Expansion(), 0),  # nothing to protect
]


@pytest.mark.parametrize(("rect", "reference", "sides", "blend"), SHOWN_CASES)
def test_shown_rectangles_carry_every_non_zero_mask_pixel(rect, reference, sides, blend):
    where = Placement(rect, reference, sides, blend)
    parts = where.shown()
    full = bytearray(rect.width * rect.height)  # 0 wherever no part is written
    covered = 0
    for part in parts:
        assert part.intersect(Rect(0, 0, rect.width, rect.height)) == part
        covered += part.width * part.height
        values = where.mask(part.translate(rect.x, rect.y))
        for y in range(part.height):
            start = (part.y + y) * rect.width + part.x
            assert full[start : start + part.width] == bytes(part.width)  # disjoint
            full[start : start + part.width] = values[y * part.width : (y + 1) * part.width]
    assert bytes(full) == where.mask()
    assert covered <= rect.width * rect.height


def test_shown_leaves_out_the_interior_and_a_margin_widens_the_band():
    where = Placement(Rect(0, 0, 800, 560), Rect(100, 80, 600, 400), Expansion(1, 1, 1, 1), 16)
    assert where.shown() == [
        Rect(0, 0, 800, 96),
        Rect(0, 464, 800, 96),
        Rect(0, 96, 116, 368),
        Rect(684, 96, 116, 368),
    ]
    assert where.shown(margin=10) == [
        Rect(0, 0, 800, 106),
        Rect(0, 454, 800, 106),
        Rect(0, 106, 126, 348),
        Rect(674, 106, 126, 348),
    ]
    one_side = Placement(Rect(0, 0, 700, 400), Rect(0, 0, 600, 400), Expansion(0, 1, 0, 0), 16)
    assert one_side.shown(margin=10) == [Rect(574, 0, 126, 400)]


def test_placement_json_round_trip():
    where = Placement(Rect(-3, 0, 90, 70), Rect(10, 5, 60, 50), Expansion(1, 0, 1, 0), 12)
    assert Placement.from_json(where.to_json()) == where


@pytest.mark.parametrize(
    "change",
    [
        {"rect": [0, 0, 90]},
        {"rect": "0,0,90,70"},
        {"reference": [10, 5, "60", 50]},
        {"sides": [1, 0, 1, None]},
        {"seam_blend": "12"},
        {"seam_blend": True},
        {"seam_blend": -1},
    ],
)
def test_a_damaged_placement_record_is_a_value_error(change):
    good = Placement(Rect(0, 0, 90, 70), Rect(10, 5, 60, 50), Expansion(1, 0, 1, 0), 12)
    with pytest.raises(ValueError):
        Placement.from_json({**good.to_json(), **change})
    with pytest.raises(ValueError):
        Placement.from_json({})


@pytest.mark.parametrize(
    ("got", "want", "ok"),
    [
        ((900, 664), (900, 664), True),
        ((450, 332), (900, 664), True),  # uniformly scaled: placed as planned
        ((675, 664), (900, 664), False),  # a quarter narrower
        ((904, 664), (900, 664), True),  # within the 2 % aspect tolerance
        ((930, 664), (900, 664), False),
        ((905, 668), (900, 664), True),  # a few pixels more, same shape
        ((12000, 9600), (320, 256), False),  # right shape, a header that lies about size
        ((640, 512), (320, 256), False),
        ((0, 0), (320, 256), False),
        ((320, 0), (320, 256), False),
    ],
)
def test_check_size(got, want, ok):
    if ok:
        check_size(got, want)
    else:
        with pytest.raises(ResultError, match="instead of"):
            check_size(got, want)


@pytest.mark.parametrize(
    ("values", "growth", "image_origin"),
    [
        ({"left": 30, "top": 5, "right": 0, "bottom": 0}, Growth(330, 205, 30, 5), (30, 5)),
        ({"left": 0, "top": 0, "right": 20, "bottom": 0}, Growth(320, 200, 0, 0), (0, 0)),
    ],
)
def test_image_origin_is_where_the_image_lands_on_the_output_area(values, growth, image_origin):
    whole = Rect(0, 0, 300, 200)
    framed = frame(Automatic("numbers", whole, Expansion()), 300, 200, values)
    assert framed.growth == growth and framed.image_origin == image_origin
    ref = framed.source.reference
    assert (ref.x, ref.y) == image_origin  # the whole image is the reference


def test_image_origin_of_transparent_margins_is_the_corner():
    auto = automatic(300, 200, Rect(0, 0, 300, 200), lambda visible: Rect(10, 20, 100, 50))
    framed = frame(auto, 300, 200, {})
    assert framed.growth is None and framed.image_origin == (0, 0)
    assert framed.source.reference == Rect(10, 20, 100, 50)
