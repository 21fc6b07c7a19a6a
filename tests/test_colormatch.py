"""Colour matching: the drift is measured over the original and undone, within safe bounds."""

from __future__ import annotations

import json

import numpy as np
import pytest
from flux_outpaint import colormatch
from flux_outpaint.colormatch import (
    GAIN_RANGE,
    IDENTITY,
    MAX_OFFSET,
    MAX_SHIFT,
    Correction,
    estimate,
)
from flux_outpaint.geometry import Expansion, Rect
from PIL import Image

ALL = Expansion(1, 1, 1, 1)


def scene(h: int, w: int, seed: int = 3) -> np.ndarray:
    """Photo-like RGB: smooth structure spanning most levels, plus fine texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack(
        [
            128 + 90 * np.sin(x / 23.0 + seed),
            128 + 80 * np.cos(y / 19.0),
            120 + 70 * np.sin((x + 2 * y) / 41.0),
        ],
        axis=-1,
    )
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def rgba(rgb: np.ndarray) -> bytes:
    alpha = np.full(rgb.shape[:2] + (1,), 255, np.uint8)
    return np.concatenate([rgb, alpha], axis=-1).tobytes()


def drift(rgb: np.ndarray, gains, offsets) -> np.ndarray:
    out = rgb.astype(np.float64) * np.asarray(gains) + np.asarray(offsets)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def canvas_with(reference: np.ndarray, at: tuple[int, int], size: tuple[int, int], seed=9):
    """The reference (as the model returned it) on a canvas of new content."""
    w, h = size
    out = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    x, y = at
    out[y : y + reference.shape[0], x : x + reference.shape[1]] = reference
    return out


GAINS, OFFSETS = (1.06, 0.95, 0.91), (6.0, -4.0, 5.0)


def test_no_drift_is_identity_and_changes_nothing():
    ref = scene(120, 160)
    result = canvas_with(ref, (40, 20), (240, 160))
    correction = estimate(
        rgba(result), (240, 160), rgba(ref), (160, 120), Rect(40, 20, 160, 120), ALL
    )
    assert correction is IDENTITY and correction.is_identity
    data = rgba(result)
    assert correction.apply(data) is data


def test_a_cast_is_measured_and_undone():
    ref = scene(120, 160)
    result = canvas_with(drift(ref, GAINS, OFFSETS), (40, 20), (240, 160))
    correction = estimate(
        rgba(result), (240, 160), rgba(ref), (160, 120), Rect(40, 20, 160, 120), ALL
    )
    assert correction.gains == pytest.approx(GAINS, abs=0.02)
    assert correction.offsets == pytest.approx(OFFSETS, abs=2.5)
    fixed = np.frombuffer(correction.apply(rgba(result)), np.uint8).reshape(160, 240, 4)
    over = fixed[20:140, 40:200, :3].astype(int)
    before = np.abs(result[20:140, 40:200].astype(int) - ref).mean()
    after = np.abs(over - ref).mean()
    assert before > 6 and after < 1.0
    assert (fixed[..., 3] == 255).all()


def test_a_uniformly_scaled_result_is_measured_at_its_own_scale():
    ref = scene(120, 160)
    big = canvas_with(drift(ref, GAINS, OFFSETS), (40, 20), (240, 160))
    small = np.asarray(Image.fromarray(big).resize((120, 80)))
    correction = estimate(rgba(small), (120, 80), rgba(ref), (160, 120), Rect(20, 10, 80, 60), ALL)
    assert correction.gains == pytest.approx(GAINS, abs=0.04)
    assert correction.offsets == pytest.approx(OFFSETS, abs=4.0)


def test_new_content_at_the_edges_and_changed_patches_do_not_throw_the_estimate():
    ref = scene(120, 160)
    returned = drift(ref, GAINS, OFFSETS)
    # the model repaints the last pixels of the original where it joins new content …
    returned[:, :6] = 255 - returned[:, :6]
    returned[-5:, :] = 0
    # … and changes a patch inside it
    returned[40:70, 60:100] = np.random.default_rng(1).integers(0, 256, (30, 40, 3))
    result = canvas_with(returned, (40, 20), (240, 160))
    correction = estimate(
        rgba(result), (240, 160), rgba(ref), (160, 120), Rect(40, 20, 160, 120), ALL
    )
    assert correction.gains == pytest.approx(GAINS, abs=0.03)
    assert correction.offsets == pytest.approx(OFFSETS, abs=4.0)


def test_an_absurd_estimate_is_clamped_and_no_level_moves_too_far():
    ref = scene(120, 160)
    result = canvas_with(drift(ref, (1.9, 0.4, 1.0), (0.0, 0.0, 90.0)), (40, 20), (240, 160))
    correction = estimate(
        rgba(result), (240, 160), rgba(ref), (160, 120), Rect(40, 20, 160, 120), ALL
    )
    assert all(GAIN_RANGE[0] <= g <= GAIN_RANGE[1] for g in correction.gains)
    assert all(abs(o) <= MAX_OFFSET for o in correction.offsets)
    for channel in range(3):
        table = correction.table(channel)
        assert max(abs(table[v] - v) for v in range(256)) <= MAX_SHIFT
        assert list(table) == sorted(table)  # never inverts tones


def test_a_correction_survives_the_journal_and_a_damaged_record_is_none():
    made = Correction((1.1, 0.95, 1.0), (4.0, -2.5, 0.0), samples=900)
    back = Correction.from_json(json.loads(json.dumps(made.to_json())))
    assert back.gains == made.gains and back.offsets == made.offsets
    data = bytes(range(256)) * 4
    assert back.apply(data) == made.apply(data)
    clamped = Correction.from_json({"gains": [9, 0.1, 1], "offsets": [500, -500, 0]})
    assert clamped.gains == (GAIN_RANGE[1], GAIN_RANGE[0], 1.0)
    assert clamped.offsets == (MAX_OFFSET, -MAX_OFFSET, 0.0)
    for bad in (
        None,
        [],
        {"gains": [1, 1], "offsets": [0, 0, 0]},
        {"gains": [1, 1, "x"], "offsets": [0, 0, 0]},
        {"gains": [1, 1, float("nan")], "offsets": [0, 0, 0]},
        {"gains": [True, 1, 1], "offsets": [0, 0, 0]},
        {"offsets": [0, 0, 0]},
    ):
        assert Correction.from_json(bad) is IDENTITY


def test_a_flat_overlap_gets_an_offset_only():
    ref = np.full((100, 100, 3), 90, np.uint8)
    result = canvas_with(drift(ref, (1.0, 1.0, 1.0), (8.0, -6.0, 0.0)), (30, 30), (160, 160))
    correction = estimate(
        rgba(result), (160, 160), rgba(ref), (100, 100), Rect(30, 30, 100, 100), ALL
    )
    assert correction.gains == (1.0, 1.0, 1.0)
    assert correction.offsets == pytest.approx((8.0, -6.0, 0.0), abs=0.5)


def test_transparent_reference_pixels_are_not_compared():
    ref = scene(100, 100)
    ref_rgba = np.frombuffer(rgba(ref), np.uint8).reshape(100, 100, 4).copy()
    ref_rgba[:, 50:, 3] = 0  # the right half is not part of the original
    returned = drift(ref, GAINS, OFFSETS)
    returned[:, 50:] = 0  # the model painted something else there
    result = canvas_with(returned, (30, 30), (160, 160))
    correction = estimate(
        rgba(result), (160, 160), ref_rgba.tobytes(), (100, 100), Rect(30, 30, 100, 100), ALL
    )
    assert correction.gains == pytest.approx(GAINS, abs=0.03)


def test_too_small_an_overlap_is_left_alone():
    ref = scene(8, 8)
    result = canvas_with(drift(ref, GAINS, OFFSETS), (20, 20), (64, 64))
    assert estimate(rgba(result), (64, 64), rgba(ref), (8, 8), Rect(20, 20, 8, 8), ALL) is IDENTITY


def test_sizes_must_match_the_buffers():
    with pytest.raises(ValueError):
        estimate(b"\0" * 16, (2, 2), b"\0" * 15, (2, 2), Rect(0, 0, 2, 2), ALL)


def test_apply_touches_only_the_colour_channels_and_describe_says_what():
    correction = Correction((1.1, 1.0, 1.0), (10.0, 0.0, 0.0), 100)
    data = bytes([120, 50, 200, 77]) * 4
    fixed = correction.apply(data)
    assert fixed[1::4] == data[1::4] and fixed[2::4] == data[2::4] and fixed[3::4] == data[3::4]
    assert fixed[0] == round((120 - 10) / 1.1)
    assert "R×1.100+10.0" in correction.describe()
    assert colormatch.IDENTITY.describe() == "no colour drift"


def test_for_plan_finds_the_reference_where_the_plan_put_it():
    from flux_outpaint.geometry import from_numbers
    from flux_outpaint.planning import make_plan

    ref = scene(120, 160)
    plan = make_plan(from_numbers(160, 120, Expansion(left=40, top=20)))
    ow, oh = plan.request_output
    result = canvas_with(drift(ref, GAINS, OFFSETS), (40, 20), (ow, oh))
    correction = colormatch.for_plan(rgba(result), (ow, oh), rgba(ref), plan)
    assert correction.gains == pytest.approx(GAINS, abs=0.02)
    half = np.asarray(Image.fromarray(result).resize((ow // 2, oh // 2)))
    scaled = colormatch.for_plan(rgba(half), (ow // 2, oh // 2), rgba(ref), plan)
    assert scaled.gains == pytest.approx(GAINS, abs=0.04)
