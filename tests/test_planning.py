import math

import pytest
from flux_outpaint.errors import InputError
from flux_outpaint.geometry import Expansion, Rect, from_canvas, from_numbers
from flux_outpaint.planning import (
    MAX_CANVAS_PIXELS,
    MAX_EXPAND,
    MIN_CANVAS_SIDE,
    estimate_cost_usd,
    make_plan,
)


def check_invariants(plan):
    src = plan.source
    ow, oh = plan.request_output
    rw, rh = plan.request_reference
    rexp = plan.request_expansion
    assert (ow, oh) == (rexp.total_width(rw), rexp.total_height(rh))
    assert 0 <= rexp.largest <= MAX_EXPAND and not rexp.is_zero
    assert ow * oh <= MAX_CANVAS_PIXELS
    assert min(ow, oh) >= MIN_CANVAS_SIDE
    # sides that grow on the canvas grow in the request, and only those
    assert rexp.sides() == src.expansion.sides()
    place = plan.placement
    # the returned image covers the whole canvas
    assert place.x <= 0 and place.y <= 0
    assert place.right >= src.canvas_width and place.bottom >= src.canvas_height
    # the returned reference region lands on the original within a canvas pixel
    kx, ky = place.width / ow, place.height / oh
    ref = src.reference
    assert abs(place.x + rexp.left * kx - ref.x) <= 1.0
    assert abs(place.y + rexp.top * ky - ref.y) <= 1.0
    assert abs(rw * kx - ref.width) <= 1.0
    assert abs(rh * ky - ref.height) <= 1.0
    if not plan.resampled:
        assert place == Rect(0, 0, src.canvas_width, src.canvas_height)
        assert (rw, rh) == (ref.width, ref.height)
        assert rexp == src.expansion


def numbers(w, h, left=0, right=0, top=0, bottom=0):
    return from_numbers(w, h, Expansion(left, right, top, bottom))


# name, source, expected request output (None = only invariants), downscaled?, upscaled?
PLAN_CASES = [
    ("one side", numbers(1024, 1024, right=512), (1536, 1024), False),
    ("all sides", numbers(1000, 800, 100, 100, 50, 50), (1200, 900), False),
    ("top only", numbers(640, 480, top=1), (640, 481), False),
    ("exactly 2048", numbers(512, 512, left=2048), (2560, 512), False),
    ("2048 on every side", numbers(64, 64, 2048, 2048, 0, 0), (4160, 64), False),
    ("2049 downscales", numbers(512, 512, left=2049), None, True),
    ("exactly 4 MP", numbers(2048, 1024, bottom=1024), (2048, 2048), False),
    ("4 MP + 1 px", numbers(2049, 1024, bottom=1024), None, True),
    ("4 MP + 1 row", numbers(2048, 1025, bottom=1024), None, True),
    ("50 MP canvas", numbers(6000, 6000, 1000, 1000, 1000, 1000), None, True),
    ("12 MP photo +25%", numbers(4000, 3000, 1000, 1000, 750, 750), None, True),
    ("odd sizes", numbers(1001, 777, 33, 0, 0, 99), (1034, 876), False),
    ("odd sizes downscaled", numbers(3001, 2777, 333, 0, 0, 999), None, True),
    ("1-px layer upscales", numbers(1, 1, 10, 10, 10, 10), None, False),
    ("thin strip", numbers(2000, 10, bottom=20), None, False),
    ("wide panorama", numbers(8000, 1000, 0, 0, 200, 200), None, True),
    ("negative offsets", from_canvas(1200, 1000, Rect(-100, -50, 1000, 800)), (1200, 1000), False),
    (
        "layer bigger than canvas, one side",
        from_canvas(500, 600, Rect(-10, -10, 520, 510)),
        (500, 600),
        False,
    ),
    ("1-px layer mid canvas", from_canvas(101, 101, Rect(50, 50, 1, 1)), (101, 101), False),
    ("tiny canvas 63", numbers(60, 60, right=3), None, False),
    ("exactly 64", numbers(32, 64, right=32), (64, 64), False),
    ("huge side only", numbers(1000, 1000, left=5000), None, True),
    ("square 2048 plus", numbers(2048, 2048, right=1), None, True),
    ("portrait to landscape", numbers(1080, 1920, 1000, 1000, 0, 0), None, True),
    ("16 MP canvas", numbers(3000, 3000, 500, 500, 500, 500), None, True),
]


@pytest.mark.parametrize(
    ("name", "source", "output", "downscaled"), PLAN_CASES, ids=[c[0] for c in PLAN_CASES]
)
def test_plan_table(name, source, output, downscaled):
    plan = make_plan(source)
    check_invariants(plan)
    assert plan.downscaled is downscaled
    if output is not None:
        assert plan.request_output == output
    if downscaled:
        assert plan.scale < 1
        # close to the binding limit, not needlessly small
        ow, oh = plan.request_output
        assert ow * oh > 0.97 * MAX_CANVAS_PIXELS or plan.request_expansion.largest > 1980


def test_tiny_canvas_is_upscaled():
    plan = make_plan(numbers(1, 1, 10, 10, 10, 10))
    assert plan.scale > 1 and not plan.downscaled
    assert min(plan.request_output) >= MIN_CANVAS_SIDE
    assert plan.placement.x <= 0 and plan.placement.right >= 21


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (numbers(100, 100), "Nothing to expand"),
        (from_canvas(50, 50, Rect(-10, -10, 100, 100)), "Nothing to expand"),
        (numbers(70000, 64, right=1), "cannot fit"),
        (numbers(100, 100, left=5000), "cannot fit"),
        (numbers(100000, 1, bottom=1), "cannot fit"),
    ],
)
def test_plan_errors(source, message):
    with pytest.raises(InputError, match=message):
        make_plan(source)


@pytest.mark.parametrize(
    ("size", "cost"),
    [
        ((1024, 1024), 0.03),
        ((512, 512), 0.03),
        ((1920, 1080), 0.045),
        ((1025, 1024), 0.045),
        ((2048, 2048), 0.075),
        ((1, 1), 0.03),
    ],
)
def test_cost(size, cost):
    assert math.isclose(estimate_cost_usd(*size), cost)


def test_plan_cost_and_description():
    plan = make_plan(numbers(6000, 4000, 500, 500, 0, 0))
    assert plan.cost_usd == estimate_cost_usd(*plan.request_output)
    what, cost = plan.describe()
    assert "Output 7000×4000" in what and "downscaled to" in what and "grows" not in what
    assert f"${plan.cost_usd:.3f}" in cost
    assert "the canvas grows to 7100×4000" in plan.describe((7100, 4000))[0]
    small = make_plan(numbers(600, 400, 50, 0, 0, 0))
    assert "sent" not in small.describe()[0]
