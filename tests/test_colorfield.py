"""The colour field: a cast that varies across the picture is followed along the seam."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from flux_outpaint import colorfield, colormatch
from flux_outpaint.colormatch import IDENTITY, Correction, estimate
from flux_outpaint.geometry import Expansion, Rect
from test_colormatch import canvas_with, rgba, scene

ALL = Expansion(1, 1, 1, 1)
REF_W, REF_H, AT = 320, 240, (64, 48)
CANVAS = (REF_W + 128, REF_H + 96)


def ramp_cast(img: np.ndarray, offset_ramp=(15.0, -12.0, 14.0), gain_ramp=(0.04, -0.03, 0.03)):
    """A cast that ramps from one corner of ``img`` to the other (as the local server's
    drift-varying scenario): t = -1 at the top left, +1 at the bottom right."""
    h, w = img.shape[:2]
    t = (np.linspace(-1, 1, w)[None, :] + np.linspace(-1, 1, h)[:, None]) / 2
    out = img.astype(np.float64)
    for c in range(3):
        out[..., c] = out[..., c] * (1.0 + gain_ramp[c] * t) + 2.0 + offset_ramp[c] * t
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def truth_and_result(seed: int = 3, moved: bool = False):
    ref = scene(REF_H, REF_W, seed)
    canvas = canvas_with(ref, AT, CANVAS, seed=seed)
    # the new area: a continuation of the reference's colours (edge extension), so the
    # seam is measurable; the model then casts the whole canvas
    x, y = AT
    grown = np.pad(ref, ((y, CANVAS[1] - REF_H - y), (x, CANVAS[0] - REF_W - x), (0, 0)), "edge")
    canvas[:] = grown
    cast = ramp_cast(canvas)
    if moved:  # something the model moved, just inside the right edge
        cast[y + 100 : y + 150, x + REF_W - 40 : x + REF_W - 5] = (250, 20, 240)
    return ref, grown, cast


def corrected(correction: Correction, cast: np.ndarray) -> np.ndarray:
    h, w = cast.shape[:2]
    out = correction.apply(rgba(cast), w, h)
    return np.frombuffer(out, np.uint8).reshape(h, w, 4)[..., :3].astype(int)


def seam_error(img: np.ndarray, truth: np.ndarray, side: str) -> float:
    x, y = AT
    cols = {
        "right": (slice(y, y + REF_H), slice(x + REF_W, x + REF_W + 8)),
        "top": (slice(y - 8, y), slice(x, x + REF_W)),
        "corner": (slice(y - 8, y), slice(x - 8, x)),  # top left: the strongest cast
    }[side]
    return float(np.abs(img[cols].astype(int) - truth[cols].astype(int)).mean())


@pytest.mark.parametrize("side", ["right", "top", "corner"])
def test_a_varying_cast_is_followed_along_the_seam(side):
    ref, truth, cast = truth_and_result()
    correction = estimate(
        rgba(cast), CANVAS, rgba(ref), (REF_W, REF_H), Rect(*AT, REF_W, REF_H), ALL
    )
    assert correction.field is not None
    globally = Correction(correction.gains, correction.offsets, correction.samples)
    off = seam_error(cast, truth, side)
    one_line = seam_error(corrected(globally, cast), truth, side)
    with_field = seam_error(corrected(correction, cast), truth, side)
    assert off > 6
    assert with_field < 0.5 * one_line, (off, one_line, with_field)
    assert with_field < 2.5


def test_a_moved_object_near_the_seam_does_not_drag_the_colours():
    ref, truth, cast = truth_and_result(moved=True)
    correction = estimate(
        rgba(cast), CANVAS, rgba(ref), (REF_W, REF_H), Rect(*AT, REF_W, REF_H), ALL
    )
    fixed = corrected(correction, cast)
    x, y = AT
    beside = (slice(y + 90, y + 160), slice(x + REF_W, x + REF_W + 8))
    assert np.abs(fixed[beside] - truth[beside].astype(int)).mean() < 3.0


def test_no_drift_leaves_everything_alone():
    ref, truth, _ = truth_and_result()
    correction = estimate(
        rgba(truth), CANVAS, rgba(ref), (REF_W, REF_H), Rect(*AT, REF_W, REF_H), ALL
    )
    assert correction is IDENTITY


def test_the_field_has_no_step_round_a_corner():
    ref, _, cast = truth_and_result()
    correction = estimate(
        rgba(cast), CANVAS, rgba(ref), (REF_W, REF_H), Rect(*AT, REF_W, REF_H), ALL
    )
    field = correction.field
    assert field is not None
    x, y = AT[0] + REF_W, AT[1]  # the top-right corner of the original
    # a walk round the corner, a pixel at a time: right along the top edge, then down
    path = [(x - 20 + k, y - 10.0) for k in range(40)] + [(x + 20.0, y - 10 + k) for k in range(40)]
    for channel in range(3):
        values = [field.at(channel, px, py) for px, py in path]
        assert max(abs(a - b) for a, b in zip(values, values[1:], strict=False)) < 0.3
        # the tilt too (at white, a change of gain of 0.001 moves a level by 0.26)
        tilts = [field.tilt_at(channel, px, py) for px, py in path]
        assert max(abs(a - b) for a, b in zip(tilts, tilts[1:], strict=False)) < 0.001


def test_the_field_fades_towards_the_global_line_far_from_the_seam():
    ref, _, cast = truth_and_result()
    correction = estimate(
        rgba(cast), CANVAS, rgba(ref), (REF_W, REF_H), Rect(*AT, REF_W, REF_H), ALL
    )
    field = correction.field
    assert field is not None
    edge = abs(field.at(0, AT[0] + REF_W + 0.5, AT[1] + REF_H - 0.5))
    far = abs(field.at(0, AT[0] + REF_W + 2000.0, AT[1] + REF_H - 0.5))
    assert edge > 3 and far < 0.01 * edge


def test_a_field_survives_the_journal_and_a_damaged_one_is_no_correction():
    ref, _, cast = truth_and_result()
    made = estimate(rgba(cast), CANVAS, rgba(ref), (REF_W, REF_H), Rect(*AT, REF_W, REF_H), ALL)
    back = Correction.from_json(json.loads(json.dumps(made.to_json())))
    assert back.field is not None
    data = rgba(cast)
    assert back.apply(data, *CANVAS) == made.apply(data, *CANVAS)
    recorded = made.to_json()
    for damage in (
        {"cols": 10**6},
        {"values": [[0.0]]},
        {"step": [0, 1]},
        {"fade": float("nan")},
        {"values": "x"},
    ):
        broken = {**recorded, "field": {**recorded["field"], **damage}}  # type: ignore[dict-item]
        assert Correction.from_json(broken) is IDENTITY, damage
    hostile = {**recorded, "field": {**recorded["field"]}}  # type: ignore[dict-item]
    hostile["field"]["values"] = [[1e9] * len(v) for v in recorded["field"]["values"]]  # type: ignore[index]
    clamped = Correction.from_json(hostile)
    assert clamped.field is not None
    assert max(abs(v) for ch in clamped.field.values for v in ch) == colorfield.MAX_FIELD


def test_areas_limit_the_field_and_the_rest_gets_the_global_line():
    ref, _, cast = truth_and_result()
    correction = estimate(
        rgba(cast), CANVAS, rgba(ref), (REF_W, REF_H), Rect(*AT, REF_W, REF_H), ALL
    )
    w, h = CANVAS
    band = Rect(AT[0] + REF_W - 16, 0, w - AT[0] - REF_W + 16, h)
    full = np.frombuffer(correction.apply(rgba(cast), w, h), np.uint8).reshape(h, w, 4)
    part = np.frombuffer(correction.apply(rgba(cast), w, h, [band]), np.uint8).reshape(h, w, 4)
    assert np.array_equal(full[:, band.x :], part[:, band.x :])
    globally = Correction(correction.gains, correction.offsets)
    plain = np.frombuffer(globally.apply(rgba(cast)), np.uint8).reshape(h, w, 4)
    tile = colorfield.TILE
    left_of = (band.x // tile) * tile  # tiles that meet the band take the field
    assert np.array_equal(plain[:, :left_of], part[:, :left_of])
    assert (part[..., 3] == 255).all()


def test_odd_sizes_and_tiny_pictures_are_covered_to_the_last_pixel():
    for w, h in ((17, 5), (1, 1), (33, 31)):
        field = colorfield.Field(
            1, 1, (0.0, 0.0), (1.0, 1.0), (0, 0, w, h), 8.0, ((5.0,), (0.0,), (-5.0,))
        )
        c = Correction(field=field)
        data = bytes([100, 100, 100, 255]) * (w * h)
        out = np.frombuffer(c.apply(data, w, h), np.uint8).reshape(h, w, 4)
        assert (
            (out[..., 0] == 95).all() and (out[..., 1] == 100).all() and (out[..., 2] == 105).all()
        )


def test_a_cast_from_the_global_helper_still_has_no_field_when_uniform():
    ref = scene(120, 160)
    from test_colormatch import GAINS, OFFSETS, drift

    result = canvas_with(drift(ref, GAINS, OFFSETS), (40, 20), (240, 160))
    correction = colormatch.estimate(
        rgba(result), (240, 160), rgba(ref), (160, 120), Rect(40, 20, 160, 120), ALL
    )
    assert correction.field is None


def tilted_gain_case():
    """A cast whose gain alone tilts across the canvas (no offset ramp): within one cell a
    dark and a light pixel drift apart, which no offset can follow."""
    ref = scene(REF_H, REF_W, 5)
    x, y = AT
    grown = np.pad(ref, ((y, CANVAS[1] - REF_H - y), (x, CANVAS[0] - REF_W - x), (0, 0)), "edge")
    cast = ramp_cast(grown, offset_ramp=(0.0, 0.0, 0.0), gain_ramp=(0.08, -0.07, 0.06))
    return ref, grown, cast


@pytest.mark.parametrize("side", ["right", "top", "corner"])
def test_a_gain_that_tilts_across_the_picture_is_followed(side):
    ref, truth, cast = tilted_gain_case()
    correction = estimate(
        rgba(cast), CANVAS, rgba(ref), (REF_W, REF_H), Rect(*AT, REF_W, REF_H), ALL
    )
    field = correction.field
    assert field is not None and field.tilted
    # the gain rises to the right and downwards for R and B and falls for G
    (ru, rv), (gu, gv), (bu, bv) = field.slopes
    assert ru > 0.01 and rv > 0.01 and bu > 0.01 and bv > 0.01
    assert gu < -0.01 and gv < -0.01
    level = dataclasses.replace(field, slopes=((0.0, 0.0),) * 3)
    untilted = dataclasses.replace(correction, field=level)
    with_tilt = seam_error(corrected(correction, cast), truth, side)
    without = seam_error(corrected(untilted, cast), truth, side)
    assert with_tilt < 0.8 * without, (with_tilt, without)


def test_a_flat_picture_gets_no_tilt():
    ref = np.full((REF_H, REF_W, 3), 120, np.uint8)
    ref = (ref + np.random.default_rng(2).normal(0, 1.5, ref.shape)).astype(np.uint8)
    x, y = AT
    grown = np.pad(ref, ((y, CANVAS[1] - REF_H - y), (x, CANVAS[0] - REF_W - x), (0, 0)), "edge")
    cast = ramp_cast(grown)
    correction = estimate(
        rgba(cast), CANVAS, rgba(ref), (REF_W, REF_H), Rect(*AT, REF_W, REF_H), ALL
    )
    assert correction.field is not None
    assert correction.field.slopes == ((0.0, 0.0),) * 3


def test_a_tilt_survives_the_journal_clamped_and_an_old_record_has_none():
    ref, _, cast = tilted_gain_case()
    made = estimate(rgba(cast), CANVAS, rgba(ref), (REF_W, REF_H), Rect(*AT, REF_W, REF_H), ALL)
    assert made.field is not None and made.field.tilted
    recorded = json.loads(json.dumps(made.to_json()))
    back = Correction.from_json(recorded)
    assert back.field is not None and back.field.slopes == made.field.slopes
    data = rgba(cast)
    assert back.apply(data, *CANVAS) == made.apply(data, *CANVAS)
    old = {**recorded, "field": {k: v for k, v in recorded["field"].items() if k != "slopes"}}
    older = Correction.from_json(old)
    assert older.field is not None and not older.field.tilted
    for damage in ([[0.1, 0.1]], "x", [[0.1], [0.1], [0.1]], [[0.1, "a"]] * 3, [[0.1, None]] * 3):
        broken = {**recorded, "field": {**recorded["field"], "slopes": damage}}
        assert Correction.from_json(broken) is IDENTITY, damage
    huge = {**recorded, "field": {**recorded["field"], "slopes": [[9.0, -9.0]] * 3}}
    clamped = Correction.from_json(huge)
    assert clamped.field is not None
    assert clamped.field.slopes == ((colorfield.MAX_SLOPE, -colorfield.MAX_SLOPE),) * 3


def test_the_tiles_keys_are_the_fields_values_where_they_show():
    ref, _, cast = tilted_gain_case()
    made = estimate(rgba(cast), CANVAS, rgba(ref), (REF_W, REF_H), Rect(*AT, REF_W, REF_H), ALL)
    field = made.field
    assert field is not None and field.tilted and not field.level
    xs = [x + 0.5 for x in range(-40, CANVAS[0] + 40, 7)]
    across = field.columns(xs)
    for y in (-30.5, 0.5, AT[1] + 0.5, AT[1] + REF_H / 2, CANVAS[1] + 25.0):
        for channel in range(3):
            keys = field.tile_keys(channel, y, across, [(0, 5), (9, len(xs))])
            assert sorted(keys) == [*range(5), *range(9, len(xs))]
            for k, (offset, steps) in keys.items():
                assert offset == pytest.approx(round(field.at(channel, xs[k], y) * 2) / 2)
                assert steps == round(field.tilt_at(channel, xs[k], y) / colorfield.GAIN_STEP)
