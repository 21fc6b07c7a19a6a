"""The seam figures of the local server's scenarios (flux_outpaint_fal_local.metrics): the
moved-object scenario's seam away from the object and the band's change far from it."""

from __future__ import annotations

import numpy as np
from flux_outpaint.geometry import Expansion, Rect
from flux_outpaint_fal_local import objects
from flux_outpaint_fal_local.metrics import (
    band_change_away_from_object,
    seam_metric,
    seams_away_from_object,
)

H, W = 160, 200


def canvas(grown: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray, Rect]:
    """A seamless result (every new pixel the original's grey level), the original, its place."""
    left, right, top, bottom = grown
    original = np.full((H, W, 3), 100, np.uint8)
    out = np.full((H + top + bottom, W + left + right, 3), 100, np.uint8)
    return out, original, Rect(left, top, W, H)


def test_the_object_is_left_out_of_the_seam_it_straddles_and_no_other():
    for grown, side in (((40, 40, 30, 0), "right"), ((0, 0, 30, 0), "top")):
        out, original, where = canvas(grown)
        painted = objects.with_object(out, (where.y, where.x, H, W), grown)
        figures = seams_away_from_object(painted, original, where, grown)
        assert figures[side] == 0.0  # the disc's edge is no seam
        assert set(figures) == {
            s for s, g in zip(("left", "right", "top", "bottom"), grown, strict=True) if g
        }
        # measured over the whole seam, the object shows
        everywhere = seam_metric(painted, original, where, Expansion(**{side: 1}))
        assert everywhere.mean() > 5
        # a real step along that seam still counts, away from the object
        stepped = painted.copy()
        if side == "right":
            stepped[:, where.right :] += 6
        else:
            stepped[: where.y] += 6
        assert seams_away_from_object(stepped, original, where, grown)[side] >= 5.9


def test_the_band_change_ignores_the_object_and_sees_a_cast():
    grown = (40, 40, 30, 0)
    out, _, where = canvas(grown)
    painted = objects.with_object(out, (where.y, where.x, H, W), grown)
    assert np.array_equal(band_change_away_from_object(painted, out, where, grown), [0, 0, 0])
    cast = painted.copy()
    cast[: where.y] += 4  # the top band, all of it far from the object on the right
    change = band_change_away_from_object(cast, out, where, grown)
    assert 0 < change[0] < 4 and np.allclose(change, change[0])
