import pytest
from flux_outpaint.errors import InputError
from flux_outpaint.geometry import (
    Expansion,
    Rect,
    Source,
    alpha_bounds,
    from_alpha_margins,
    from_aspect,
    from_canvas,
    from_numbers,
    from_target_size,
    mask_bounds,
)


def rgba_with_box(w, h, box, alpha=255):
    px = bytearray(w * h * 4)
    for y in range(box.y, box.bottom):
        for x in range(box.x, box.right):
            px[(y * w + x) * 4 + 3] = alpha
    return bytes(px)


CANVAS_CASES = [
    # canvas, layer, expected reference, expected expansion
    ((100, 80), Rect(0, 0, 100, 80), Rect(0, 0, 100, 80), Expansion()),
    ((140, 80), Rect(20, 0, 100, 80), Rect(20, 0, 100, 80), Expansion(20, 20, 0, 0)),
    ((100, 90), Rect(0, 0, 100, 80), Rect(0, 0, 100, 80), Expansion(0, 0, 0, 10)),
    ((200, 200), Rect(50, 60, 100, 80), Rect(50, 60, 100, 80), Expansion(50, 50, 60, 60)),
    # layer sticking out on the left and top: the off-canvas part is cropped
    ((200, 200), Rect(-30, -10, 100, 80), Rect(0, 0, 70, 70), Expansion(0, 130, 0, 130)),
    # layer bigger than the canvas on every side: nothing to expand
    ((50, 50), Rect(-10, -10, 100, 100), Rect(0, 0, 50, 50), Expansion()),
    # a 1-px layer in the middle
    ((101, 101), Rect(50, 50, 1, 1), Rect(50, 50, 1, 1), Expansion(50, 50, 50, 50)),
    # layer off the right edge, canvas extends left
    ((300, 100), Rect(250, 0, 100, 100), Rect(250, 0, 50, 100), Expansion(250, 0, 0, 0)),
]


@pytest.mark.parametrize(("canvas", "layer", "reference", "expansion"), CANVAS_CASES)
def test_from_canvas(canvas, layer, reference, expansion):
    src = from_canvas(*canvas, layer)
    assert src.reference == reference
    assert src.expansion == expansion
    assert (src.canvas_width, src.canvas_height) == canvas


def test_from_canvas_layer_outside():
    with pytest.raises(InputError, match="outside the canvas"):
        from_canvas(100, 100, Rect(200, 0, 50, 50))


def test_expansion_rejects_negative_and_bool():
    with pytest.raises(InputError):
        Expansion(left=-1)
    with pytest.raises(InputError):
        Expansion(left=True)


def test_source_rejects_reference_outside():
    with pytest.raises(InputError):
        Source(Rect(10, 0, 100, 10), 100, 10)


@pytest.mark.parametrize(
    "box",
    [Rect(0, 0, 1, 1), Rect(3, 4, 5, 2), Rect(0, 0, 20, 10), Rect(19, 9, 1, 1), Rect(7, 0, 1, 10)],
)
def test_alpha_bounds(box):
    assert alpha_bounds(rgba_with_box(20, 10, box), 20, 10) == box


def test_alpha_bounds_empty_and_threshold():
    assert alpha_bounds(bytes(20 * 10 * 4), 20, 10) is None
    faint = rgba_with_box(20, 10, Rect(2, 2, 3, 3), alpha=5)
    assert alpha_bounds(faint, 20, 10) == Rect(2, 2, 3, 3)
    assert alpha_bounds(faint, 20, 10, threshold=5) is None


def test_alpha_bounds_size_mismatch():
    with pytest.raises(InputError):
        alpha_bounds(b"\x00" * 7, 2, 2)


def test_from_alpha_margins():
    src = from_alpha_margins(Rect(0, 0, 200, 100), Rect(40, 10, 120, 80))
    assert src.expansion == Expansion(40, 40, 10, 10)
    with pytest.raises(InputError, match="fully transparent"):
        from_alpha_margins(Rect(0, 0, 20, 20), None)
    with pytest.raises(InputError, match="Nothing to expand"):
        from_alpha_margins(Rect(5, 5, 20, 20), Rect(0, 0, 20, 20))


def test_from_numbers():
    src = from_numbers(64, 48, Expansion(1, 2, 3, 4))
    assert src.reference == Rect(1, 3, 64, 48)
    assert (src.canvas_width, src.canvas_height) == (67, 55)
    assert src.expansion == Expansion(1, 2, 3, 4)


@pytest.mark.parametrize(
    ("anchor", "expansion"),
    [
        ("center", Expansion(50, 51, 10, 10)),
        ("top-left", Expansion(0, 101, 0, 20)),
        ("bottom-right", Expansion(101, 0, 20, 0)),
        ("top", Expansion(50, 51, 0, 20)),
        ("left", Expansion(0, 101, 10, 10)),
    ],
)
def test_from_target_size(anchor, expansion):
    assert from_target_size(100, 80, 201, 100, anchor).expansion == expansion


def test_from_target_size_errors():
    with pytest.raises(InputError, match="smaller"):
        from_target_size(100, 80, 90, 100)
    with pytest.raises(InputError, match="anchor"):
        from_target_size(100, 80, 200, 100, "middle")


@pytest.mark.parametrize(
    ("size", "aspect", "canvas"),
    [
        ((1000, 1000), (16, 9), (1778, 1000)),
        ((1920, 1080), (1, 1), (1920, 1920)),
        ((1080, 1920), (16, 9), (3414, 1920)),
        ((300, 200), (3, 2), (300, 200)),
        ((301, 200), (3, 2), (301, 200)),  # 200.67 rows wanted: within a pixel, as it is
        ((451, 300), (3, 2), (451, 300)),
        ((302, 200), (3, 2), (302, 202)),  # 201.33: more than rounding
        ((299, 200), (3, 2), (300, 200)),  # exactly one column short: asked for, not rounding
        ((298, 200), (3, 2), (300, 200)),
    ],
)
def test_from_aspect(size, aspect, canvas):
    src = from_aspect(*size, *aspect)
    assert (src.canvas_width, src.canvas_height) == canvas
    # smallest canvas of that aspect: one side equals the image's
    assert src.canvas_width == size[0] or src.canvas_height == size[1]


def test_mask_bounds_is_alpha_bounds_of_one_channel():
    rgba = rgba_with_box(20, 10, Rect(3, 2, 5, 4), alpha=7)
    assert mask_bounds(rgba[3::4], 20, 10) == alpha_bounds(rgba, 20, 10) == Rect(3, 2, 5, 4)
    assert mask_bounds(rgba[3::4], 20, 10, threshold=7) is None
    with pytest.raises(InputError, match="mask values"):
        mask_bounds(bytes(199), 20, 10)


def test_union_holds_both():
    assert Rect(0, 0, 10, 10).union(Rect(20, 5, 5, 20)) == Rect(0, 0, 25, 25)
    assert Rect(-5, 3, 2, 2).union(Rect(0, 0, 1, 1)) == Rect(-5, 0, 6, 5)


@pytest.mark.parametrize(
    ("area", "max_pixels", "heights"),
    [
        (Rect(3, 7, 100, 10), 1000, [10]),
        (Rect(3, 7, 100, 10), 300, [3, 3, 3, 1]),
        (Rect(0, 0, 5000, 4), 10, [1, 1, 1, 1]),  # wider than max_pixels: one row at a time
        (Rect(0, 0, 10, 0), 100, []),
    ],
)
def test_bands_cover_the_area_in_whole_rows(area, max_pixels, heights):
    bands = area.bands(max_pixels)
    assert [b.height for b in bands] == heights
    assert all(b.x == area.x and b.width == area.width for b in bands)
    assert [b.y for b in bands] == [area.y + sum(heights[:i]) for i in range(len(heights))]
