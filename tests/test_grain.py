"""Grain match: noise measured at the canvas's scale, added only where a band was enlarged."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from flux_outpaint import grain
from flux_outpaint.geometry import Expansion, Rect
from flux_outpaint.grain import NONE, Grain, decide, noise_sigma


def photo_strip(w: int, h: int, luma: float, chroma: float, seed: int = 1) -> bytes:
    """Smooth structure (gradients and a soft edge) plus luma and chroma Gaussian noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([90 + x * 0.3, 120 + 40 * np.tanh((y - h / 2) / 6), 140 - y * 0.2], -1)
    noise = rng.normal(0, luma, (h, w, 1)) + rng.normal(0, chroma, (h, w, 3))
    rgb = np.clip(np.round(base + noise), 0, 255).astype(np.uint8)
    alpha = np.full((h, w, 1), 255, np.uint8)
    return np.concatenate([rgb, alpha], -1).tobytes()


@pytest.mark.parametrize(("luma", "chroma"), [(3.0, 1.0), (1.5, 0.0), (6.0, 2.5)])
def test_noise_is_measured_on_flat_areas_whatever_the_structure(luma, chroma):
    got_luma, got_chroma = noise_sigma(photo_strip(300, 200, luma, chroma), 300, 200)
    assert got_luma == pytest.approx(luma, rel=0.2)
    assert got_chroma == pytest.approx(chroma, abs=0.6)


def test_a_clean_picture_measures_no_noise():
    luma, chroma = noise_sigma(photo_strip(200, 100, 0.0, 0.0), 200, 100)
    assert luma < 0.3 and chroma < 0.3


def test_an_area_is_measured_alone():
    noisy = np.frombuffer(photo_strip(200, 100, 5.0, 0.0), np.uint8).reshape(100, 200, 4).copy()
    noisy[:, 100:] = np.frombuffer(photo_strip(100, 100, 0.0, 0.0), np.uint8).reshape(100, 100, 4)
    data = noisy.tobytes()
    assert noise_sigma(data, 200, 100, Rect(0, 0, 100, 100))[0] > 4
    assert noise_sigma(data, 200, 100, Rect(100, 0, 100, 100))[0] < 0.3
    with pytest.raises(ValueError):
        noise_sigma(data[:-1], 200, 100)


def test_grain_only_where_the_band_was_enlarged_and_the_original_is_grainy():
    assert decide((3.0, 1.0), (0.2, 0.1), 1.0, 7) is NONE  # not enlarged
    assert decide((3.0, 1.0), (0.2, 0.1), 1.1, 7) is NONE  # barely
    assert decide((0.3, 0.2), (0.0, 0.0), 2.6, 7) is NONE  # a clean original
    assert decide((3.0, 1.0), (3.0, 1.0), 2.6, 7) is NONE  # the band has its grain already
    got = decide((3.0, 1.0), (1.0, 0.0), 2.6, 7)
    assert got.luma == pytest.approx(math.sqrt(8.0), abs=1e-3) and got.chroma == 1.0
    assert Grain.from_json(json.loads(json.dumps(got.to_json()))) == got  # recover: the same
    assert decide((99.0, 0.0), (0.0, 0.0), 3.0, 7).luma == grain.MAX_SIGMA


def test_a_grain_survives_the_journal_and_a_damaged_record_is_none():
    made = Grain(2.5, 0.75, 123456)
    assert Grain.from_json(json.loads(json.dumps(made.to_json()))) == made
    assert Grain.from_json({"luma": 1e9, "chroma": -5, "seed": 2**40}).luma == grain.MAX_SIGMA
    for bad in (None, [], {"luma": 1}, {"luma": "2", "chroma": 0, "seed": 1}, {"luma": True}):
        assert Grain.from_json(bad) is NONE
    assert "no grain" in NONE.describe() and "2.50" in made.describe()


def test_noise_bytes_are_seeded_and_never_repeat_between_pieces():
    a = grain.noise_bytes(99, (0, 0), 1 << 16)
    assert a == grain.noise_bytes(99, (0, 0), 1 << 16)
    assert a != grain.noise_bytes(99, (0, 1), 1 << 16)
    assert a != grain.noise_bytes(98, (0, 0), 1 << 16)
    # no short period inside a piece either
    assert a[:4096] not in a[1:]


def test_the_composite_adds_noise_of_the_asked_deviation_and_keeps_the_levels():
    sigma = 2.5
    alpha, tables = grain.noise_tables(Grain(sigma, 0.0, 5))
    table = grain.precompensation(alpha)
    levels = np.repeat(np.arange(20, 236, dtype=np.float64), 4000)
    m = np.frombuffer(grain.noise_bytes(5, (1,), levels.size), np.uint8)
    noise = np.frombuffer(tables[0], np.uint8)[m].astype(np.float64)
    a = alpha / 255.0
    # GdkPixbuf's composite truncates its integer blend
    made = np.floor(np.frombuffer(table, np.uint8)[levels.astype(int)] * (1 - a) + noise * a)
    assert abs((made - levels).mean()) < 0.3
    assert (made - levels).std() == pytest.approx(sigma, rel=0.15)
    assert grain.precompensation(0) == bytes(range(256))


def test_probes_sit_on_both_sides_of_the_most_grown_side():
    ref = Rect(100, 50, 400, 300)
    inside, outside = grain.probes(ref, Expansion(left=10, right=200))
    assert inside == Rect(436, 50, 64, 300) and outside == Rect(500, 50, 64, 300)
    inside, outside = grain.probes(ref, Expansion(top=20))
    assert inside == Rect(100, 50, 400, 20) and outside == Rect(100, 30, 400, 20)
    assert grain.probes(ref, Expansion()) is None


@pytest.mark.parametrize(("luma", "chroma"), [(3.0, 1.0), (2.0, 0.0), (1.0, 2.0), (0.0, 1.5)])
def test_one_composite_adds_the_luma_and_the_chroma_grain(luma, chroma):
    made = Grain(luma, chroma, 5)
    alpha, tables = grain.noise_tables(made)
    m = np.frombuffer(grain.noise_bytes(5, (2,), 400_000), np.uint8)
    a = alpha / 255.0
    noise = np.stack([np.frombuffer(t, np.uint8)[m] for t in tables], -1).astype(float)
    added = a * (noise - grain.UNIFORM_MEAN)  # what the composite adds around each level
    assert np.abs(added.mean(axis=0)).max() < 0.02
    # a channel carries luma² + chroma², two channels share only the luma
    cov = np.cov(added.T)
    shared = np.mean([cov[0, 1], cov[1, 2], cov[0, 2]])
    own = np.mean(np.diag(cov))
    if luma:
        assert math.sqrt(max(shared, 0)) == pytest.approx(luma, rel=0.12)
    else:
        assert abs(shared) < 0.1 * chroma**2 + 0.05
    assert math.sqrt(max(own - shared, 0)) == pytest.approx(chroma, abs=0.15 + 0.1 * chroma)
