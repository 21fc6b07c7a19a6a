import pytest
from flux_outpaint.geometry import Expansion, Rect
from flux_outpaint.seam import mask_bytes, ramp


def grid(data, w):
    return [list(data[i : i + w]) for i in range(0, len(data), w)]


def test_hard_edge():
    m = grid(mask_bytes(6, 4, Rect(2, 1, 3, 2), Expansion(1, 1, 1, 1), 0), 6)
    assert m == [
        [255] * 6,
        [255, 255, 0, 0, 0, 255],
        [255, 255, 0, 0, 0, 255],
        [255] * 6,
    ]


def test_ramp_values():
    assert ramp(0) == []
    assert ramp(1) == [128]
    r = ramp(4)
    assert r == sorted(r, reverse=True) and r[-1] > 0 and r[0] < 255


def test_ramp_only_on_expanded_sides():
    w, h = 20, 10
    m = grid(mask_bytes(w, h, Rect(5, 0, 10, 10), Expansion(1, 0, 0, 0), 3), w)
    row = m[5]
    assert row[:5] == [255] * 5
    assert row[5:8] == ramp(3)
    assert row[8:15] == [0] * 7  # right side did not grow: no ramp
    assert row[15:] == [255] * 5


def test_corner_takes_larger_ramp():
    m = grid(mask_bytes(10, 10, Rect(2, 2, 6, 6), Expansion(1, 1, 1, 1), 2), 10)
    assert m[2][2] == ramp(2)[0]
    assert m[3][2] == ramp(2)[0]
    assert m[3][3] == ramp(2)[1]
    assert m[4][4] == 0


@pytest.mark.parametrize("blend", [0, 1, 8, 64, 256])
def test_interior_zero_and_outside_full(blend):
    w, h = 300, 200
    orig = Rect(40, 30, 200, 120)
    data = mask_bytes(w, h, orig, Expansion(1, 1, 1, 1), blend)
    assert len(data) == w * h
    m = grid(data, w)
    inner = Rect(orig.x + blend, orig.y + blend, orig.width - 2 * blend, orig.height - 2 * blend)
    for y in range(h):
        for x in range(w):
            inside = orig.x <= x < orig.right and orig.y <= y < orig.bottom
            if not inside:
                assert m[y][x] == 255
            elif inner.x <= x < inner.right and inner.y <= y < inner.bottom:
                assert m[y][x] == 0
            else:
                assert m[y][x] < 255


def test_original_sticking_out_of_mask():
    m = grid(mask_bytes(10, 4, Rect(-5, 0, 10, 4), Expansion(0, 1, 0, 0), 0), 10)
    assert m[0] == [0] * 5 + [255] * 5
