"""Colour matching through the CLI against the local server's drift scenario."""

from __future__ import annotations

import numpy as np
import pytest
from cli_support import keyed, make_env, photo, run, text
from flux_outpaint.geometry import Expansion, Rect
from flux_outpaint.journal import Journal
from flux_outpaint_fal_local import objects, start_server
from flux_outpaint_fal_local.metrics import (
    band_change_away_from_object,
    seam_metric,
    seams_away_from_object,
)
from PIL import Image

pytestmark = pytest.mark.server  # the local fal server on loopback

LEFT, RIGHT, TOP = 96, 96, 48


def outpaint(tmp_path, scenario: str | None, *extra) -> np.ndarray:
    src = tmp_path / "in.png"
    if not src.exists():
        photo(320, 240, seed=5).save(src)
    out = tmp_path / f"out-{scenario}-{'-'.join(map(str, extra))}.png"
    env = keyed(make_env(tmp_path))
    with start_server(scenarios=[scenario] if scenario else []) as server:
        r = run(
            [
                src,
                "--left",
                LEFT,
                "--right",
                RIGHT,
                "--top",
                TOP,
                "--base-url",
                server.base_url,
                "-o",
                out,
                *extra,
            ],
            env,
        )
    assert r.returncode == 0, text(r)
    return np.asarray(Image.open(out).convert("RGB"))


def test_colour_match_takes_the_drift_out_of_the_seam(tmp_path):
    matched = outpaint(tmp_path, "drift")
    plain = outpaint(tmp_path, "drift", "--no-color-match")
    original = np.asarray(Image.open(tmp_path / "in.png").convert("RGB"))
    where, grown = Rect(LEFT, TOP, 320, 240), Expansion(1, 1, 1, 0)
    on = seam_metric(matched, original, where, grown)
    off = seam_metric(plain, original, where, grown)
    assert off.mean() > 5  # the drift shows as a seam without matching
    assert on.mean() <= 0.25 * off.mean(), (on, off)
    # the original is exact outside the blend band either way
    inner = (slice(TOP + 16, TOP + 240), slice(LEFT + 16, LEFT + 320 - 16))
    for out in (matched, plain):
        assert np.array_equal(out[inner], original[16:, 16:-16])


def test_without_drift_matching_leaves_the_new_pixels_alone(tmp_path):
    matched = outpaint(tmp_path, None)
    plain = outpaint(tmp_path, None, "--no-color-match")
    band = np.ones(matched.shape[:2], bool)
    band[TOP : TOP + 240, LEFT : LEFT + 320] = False
    change = np.abs(matched.astype(int) - plain.astype(int))[band].mean()
    assert change <= 1.0


def sides(out: np.ndarray, original: np.ndarray) -> dict[str, float]:
    h, w = original.shape[:2]
    where = Rect(LEFT, TOP, w, h)
    return {
        side: float(seam_metric(out, original, where, Expansion(**{side: 1})).mean())
        for side in ("right", "top", "left")
    }


def corner_step(out: np.ndarray) -> float:
    """How much the new pixels jump across the top-left corner's diagonal run."""
    a = out[TOP - 8 : TOP, LEFT - 8 : LEFT].astype(float).mean(axis=(0, 1))
    b = out[TOP - 8 : TOP, LEFT : LEFT + 8].astype(float).mean(axis=(0, 1))
    c = out[TOP : TOP + 8, LEFT - 8 : LEFT].astype(float).mean(axis=(0, 1))
    return float(max(np.abs(a - b).max(), np.abs(a - c).max()))


def test_a_cast_that_varies_across_the_canvas_is_followed_at_every_seam(tmp_path):
    matched = outpaint(tmp_path, "drift-varying")
    plain = outpaint(tmp_path, "drift-varying", "--no-color-match")
    floor = outpaint(tmp_path, None, "--no-color-match")
    original = np.asarray(Image.open(tmp_path / "in.png").convert("RGB"))
    on, off, none = sides(matched, original), sides(plain, original), sides(floor, original)
    for side in ("right", "top", "left"):
        assert on[side] <= 0.55 * off[side], (side, on, off)
        assert on[side] <= max(1.5 * none[side], none[side] + 0.5), (side, on, none)
    # the top-left corner, where two grown sides meet and the cast is strongest: no step
    assert corner_step(matched) <= corner_step(floor) + 2.0


def test_the_grain_option_changes_nothing_where_the_band_is_not_enlarged(tmp_path):
    grainy = outpaint(tmp_path, "texture")
    plain = outpaint(tmp_path, "texture", "--no-grain-match")
    assert np.array_equal(grainy, plain)


def grainy_photo(w: int, h: int, sigma: float, seed: int = 7) -> np.ndarray:
    """Smooth structure plus sensor-like grain (luma σ ``sigma``, chroma σ/3), 8-bit RGB."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack(
        [120 + 60 * np.sin(x / 400), 110 + 50 * np.cos(y / 300), 100 + 40 * np.sin((x + y) / 700)],
        axis=-1,
    )
    base += rng.standard_normal((h, w, 1), dtype=np.float32) * sigma
    base += rng.standard_normal((h, w, 3), dtype=np.float32) * (sigma / 3)
    return np.clip(base + 0.5, 0, 255).astype(np.uint8)


def fine_detail(img: np.ndarray) -> float:
    """Mean |Laplacian| of luminance."""
    y = img.astype(np.float64)
    y = y @ np.array([0.299, 0.587, 0.114]) if y.ndim == 3 else y
    lap = 4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]
    return float(np.abs(lap).mean())


def widen(tmp_path, src, out, grow: int, server, *extra):
    env = keyed(make_env(tmp_path))
    r = run(
        [src, "--right", grow, "--base-url", server.base_url, "-o", out, "--force", *extra],
        env,
        timeout=300,
    )
    assert r.returncode == 0, text(r)
    return env


def test_grain_at_a_camera_size_and_recover_places_the_same_pixels(tmp_path):
    w, h, grow = 4000, 3000, 1000  # 12 MP grown to 15 MP: fal's image comes back at 0.53
    original = grainy_photo(w, h, 3.0)
    src = tmp_path / "camera.png"
    Image.fromarray(original).save(src, compress_level=1)
    with start_server(scenarios=["texture"]) as server:
        env = widen(tmp_path, src, tmp_path / "grain.png", grow, server)
        (rid,) = server.submits
        widen(tmp_path, src, tmp_path / "plain.png", grow, server, "--no-grain-match")
        r = run(["--recover", rid, "-o", tmp_path / "again.png", "--local"], env, timeout=300)
        assert r.returncode == 0, text(r)
    grainy = np.asarray(Image.open(tmp_path / "grain.png"))
    plain = np.asarray(Image.open(tmp_path / "plain.png"))
    inside = fine_detail(original[:, -64:])
    assert fine_detail(plain[:, w : w + 64]) < 0.5 * inside  # the smooth band of today
    assert 0.8 <= fine_detail(grainy[:, w : w + 64]) / inside <= 1.25
    assert np.array_equal(grainy[:, : w - 16], original[:, : w - 16])  # the original exact
    assert np.array_equal(np.asarray(Image.open(tmp_path / "again.png")), grainy)


def test_every_take_of_variations_gets_grain_and_recover_places_the_same_pixels(tmp_path):
    w, h, grow = 2000, 1800, 1100  # 5.6 MP canvas: the band enlarged 1.155 times, barely
    original = grainy_photo(w, h, 3.0)
    src = tmp_path / "takes.png"
    Image.fromarray(original).save(src, compress_level=1)
    with start_server(scenarios=["texture"]) as server:
        env = widen(tmp_path, src, tmp_path / "grain-{n}.png", grow, server, "--variations", 2)
        widen(
            tmp_path, src, tmp_path / "plain-{n}.png", grow, server, "--variations", 2,
            "--no-grain-match",
        )  # fmt: skip
        taken = {
            e.take.number: e.request_id
            for e in Journal(tmp_path / "data" / "journal.jsonl").entries()
            if e.take is not None and "grain-" in (e.output or "")
        }
        assert sorted(taken) == [1, 2]
        r = run(["--recover", taken[2], "-o", tmp_path / "again.png", "--local"], env, timeout=300)
        assert r.returncode == 0, text(r)
    inside = fine_detail(original[:, -64:])
    for n in (1, 2):
        grainy = np.asarray(Image.open(tmp_path / f"grain-{n}.png"))
        plain = np.asarray(Image.open(tmp_path / f"plain-{n}.png"))
        ratio = fine_detail(grainy[:, w : w + 64]) / inside
        before = fine_detail(plain[:, w : w + 64]) / inside
        print(f"take {n}: band fine detail / original's {ratio:.2f} (grain off {before:.2f})")
        assert before < 0.5  # the smooth band of before
        assert 0.8 <= ratio <= 1.25, (n, ratio)
        assert np.array_equal(grainy[:, : w - 16], original[:, : w - 16])  # the original exact
    again = np.asarray(Image.open(tmp_path / "again.png"))
    assert np.array_equal(again, np.asarray(Image.open(tmp_path / "grain-2.png")))


def test_grain_on_a_16_bit_grey_photo(tmp_path):
    w, h, grow = 2600, 1700, 900  # 5.95 MP canvas: enlarged 1.2 times
    grey = grainy_photo(w, h, 3.0)[..., 1].astype(np.uint16) * 257
    src = tmp_path / "grey16.png"
    Image.fromarray(grey).save(src)
    with start_server(scenarios=["texture"]) as server:
        widen(tmp_path, src, tmp_path / "grain.png", grow, server)
        widen(tmp_path, src, tmp_path / "plain.png", grow, server, "--no-grain-match")
    grainy = np.asarray(Image.open(tmp_path / "grain.png"))
    plain = np.asarray(Image.open(tmp_path / "plain.png"))
    assert grainy.dtype == np.uint16 or Image.open(tmp_path / "grain.png").mode.startswith("I")
    assert grainy.ndim == 2
    band = (slice(None), slice(w, w + 64))
    inside = fine_detail(grey[:, -64:])
    assert fine_detail(grainy[band]) > 1.3 * fine_detail(plain[band])
    assert fine_detail(grainy[band]) <= 1.25 * inside
    assert np.array_equal(grainy[:, : w - 16], grey[:, : w - 16])


def away_from_the_object(out: np.ndarray, original: np.ndarray) -> dict[str, float]:
    """Seam metric per side; on the right, only the rows well clear of the moved object."""
    h, w = original.shape[:2]
    return seams_away_from_object(out, original, Rect(LEFT, TOP, w, h), (LEFT, RIGHT, TOP, 0))


def test_a_moved_object_near_the_seam_does_not_drag_the_correction(tmp_path):
    moved = outpaint(tmp_path, "moved-object")
    moved_off = outpaint(tmp_path, "moved-object", "--no-color-match")
    drift = outpaint(tmp_path, "drift")
    original = np.asarray(Image.open(tmp_path / "in.png").convert("RGB"))
    on, off = away_from_the_object(moved, original), away_from_the_object(moved_off, original)
    clean = away_from_the_object(drift, original)
    print(f"moved object: seams away from it on {on}, off {off}, drift alone on {clean}")
    for side in ("right", "top", "left"):
        assert on[side] <= 0.25 * off[side], (side, on, off)
        assert on[side] <= clean[side] + 0.5, (side, on, clean)
    # no cast spread into the band: away from the object the new pixels are those of the
    # same drift without it
    h, w = original.shape[:2]
    cy, cx, radius = objects.disc(moved.shape[:2], (TOP, LEFT, h, w), (LEFT, RIGHT, TOP, 0))
    # the object is there (drifted and blended, still far brighter than the drift alone)
    at = (int(cy), int(cx + radius / 2))
    assert moved[at].astype(int).sum() > drift[at].astype(int).sum() + 100
    where = Rect(LEFT, TOP, w, h)
    cast = band_change_away_from_object(moved, drift, where, (LEFT, RIGHT, TOP, 0))
    print(f"moved object: mean change of the band away from it {cast}")
    assert np.abs(cast).max() <= 1.0, cast
