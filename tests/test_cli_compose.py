"""The band-wise composite against the straightforward one (scale fal's whole image onto the
canvas, then put the original over it through the whole seam mask): the same picture, for
every side, blend, scale and depth."""

from __future__ import annotations

import numpy as np
import pytest
from flux_outpaint import geometry, planning
from flux_outpaint.framing import Placement
from flux_outpaint_cli import compose as cp
from flux_outpaint_cli import photo as ph
from PIL import Image


def _photo(values: np.ndarray, space: ph.ColourSpace) -> ph.Photo:
    return ph.Photo("t", None, values, space, None, None, "PNG", "0" * 64)


def _straightforward(original: np.ndarray, result: Image.Image, plan, blend: int) -> np.ndarray:
    src, place = plan.source, plan.placement
    fitted = result.resize((place.width, place.height), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (src.canvas_width, src.canvas_height))
    canvas.paste(fitted, (place.x, place.y))
    out = np.asarray(canvas).astype(np.int64)
    ref = src.reference
    mask = np.frombuffer(Placement.from_plan(plan, blend).mask(ref), np.uint8)
    w = mask.reshape(ref.height, ref.width, 1).astype(np.int64)
    region = out[ref.y : ref.bottom, ref.x : ref.right]
    region[...] = (region * w + original.astype(np.int64) * (255 - w) + 127) // 255
    return out


@pytest.mark.parametrize(
    ("size", "exp", "blend"),
    [
        ((120, 90), (30, 0, 0, 0), 0),
        ((120, 90), (30, 20, 10, 40), 8),
        ((90, 120), (0, 0, 50, 0), 16),
        ((2400, 300), (0, 1800, 0, 0), 4),  # downscaled: the result is resampled per band
    ],
)
def test_bands_equal_the_whole_canvas_composite(size, exp, blend):
    rng = np.random.default_rng(sum(size) + blend)
    w, h = size
    original = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    plan = planning.make_plan(geometry.from_numbers(w, h, geometry.Expansion(*exp)))
    result = Image.fromarray(
        rng.integers(0, 256, (*plan.request_output[::-1], 3), dtype=np.uint8), "RGB"
    )
    space = ph.ColourSpace("RGB", False, "uint8")
    ref = plan.source.reference
    got = cp.compose(_photo(original, space), (ref.x, ref.y), result, plan, blend).astype(int)
    want = _straightforward(original, result, plan, blend)
    if plan.resampled:  # a band's resampling sees the same source pixels: within rounding
        assert np.abs(got - want).max() <= 2
    else:
        assert np.array_equal(got, want)
    interior = got[ref.y + blend : ref.bottom - blend, ref.x + blend : ref.right - blend]
    assert np.array_equal(interior, original[blend : h - blend, blend : w - blend])


def test_16bit_original_stays_exact_and_new_pixels_are_scaled():
    rng = np.random.default_rng(1)
    original = rng.integers(0, 65536, (64, 80, 1), dtype=np.uint16)
    plan = planning.make_plan(geometry.from_numbers(80, 64, geometry.Expansion(0, 16, 0, 0)))
    result = Image.new("RGB", plan.request_output, (10, 20, 30))
    space = ph.ColourSpace("L", False, "uint16")
    got = cp.compose(_photo(original, space), (0, 0), result, plan, 6)
    assert got.dtype == np.uint16
    assert np.array_equal(got[:, :74], original[:, :74])
    grey = np.asarray(Image.new("RGB", (1, 1), (10, 20, 30)).convert("L"))[0, 0]
    assert (got[:, 80:] == int(grey) * 257).all()
    ramp = got[:, 74:80].astype(int)
    assert (ramp != original[:, 74:80]).any()


def test_a_wrong_size_result_is_refused():
    from flux_outpaint.errors import ResultError

    plan = planning.make_plan(geometry.from_numbers(100, 80, geometry.Expansion(0, 50, 0, 0)))
    result = Image.new("RGB", (100, 80))
    space = ph.ColourSpace("RGB", False, "uint8")
    with pytest.raises(ResultError):
        cp.compose(_photo(np.zeros((80, 100, 3), np.uint8), space), (0, 0), result, plan, 0)


def _grainy_case(w: int, h: int, grow: int, sigma: float):
    """A grainy original widened by ``grow``; fal's image the reference's smooth structure
    (no grain: as a band enlarged from a shrunk request looks)."""
    rng = np.random.default_rng(4)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    smooth = np.stack([100 + x * 0.01, 120 + y * 0.02, 90 + 0 * x], -1)
    original = np.clip(np.round(smooth + rng.normal(0, sigma, (h, w, 1))), 0, 255).astype(np.uint8)
    plan = planning.make_plan(geometry.from_numbers(w, h, geometry.Expansion(right=grow)))
    ow, oh = plan.request_output
    yy, xx = np.mgrid[0:oh, 0:ow].astype(np.float64)
    s = (w + grow) / ow
    fal = np.stack([100 + xx * s * 0.01, 120 + yy * s * 0.02, 90 + 0 * xx], -1)
    result = Image.fromarray(np.clip(np.round(fal), 0, 255).astype(np.uint8), "RGB")
    return original, plan, result


def _fine_detail(img: np.ndarray) -> float:
    y = img[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    lap = 4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]
    return float(np.abs(lap).mean())


def test_grain_puts_the_originals_fine_detail_back_into_an_enlarged_band():
    original, plan, result = _grainy_case(2600, 1700, 900, 3.0)
    space = ph.ColourSpace("RGB", False, "uint8")
    photo = _photo(original, space)
    grain = cp.grain_for(photo, (0, 0), result, plan)
    assert grain.luma == pytest.approx(3.0, rel=0.25)
    plain = cp.compose(photo, (0, 0), result, plan, 8)
    grainy = cp.compose(photo, (0, 0), result, plan, 8, grain=grain)
    w = original.shape[1]
    inside = _fine_detail(original[:, -64:])
    assert _fine_detail(plain[:, w : w + 64]) < 0.3 * inside
    assert 0.8 < _fine_detail(grainy[:, w : w + 64]) / inside < 1.25
    # the original is untouched; the same input gets the same grain
    assert np.array_equal(grainy[:, : w - 8], original[:, : w - 8])
    again = cp.compose(
        photo, (0, 0), result, plan, 8, grain=cp.grain_for(photo, (0, 0), result, plan)
    )
    assert np.array_equal(again, grainy)
    # the band keeps its levels on average
    assert abs(grainy[:, w:].astype(float).mean() - plain[:, w:].astype(float).mean()) < 0.2


def test_no_grain_where_nothing_was_enlarged():
    original, plan, result = _grainy_case(600, 400, 200, 3.0)
    space = ph.ColourSpace("RGB", False, "uint8")
    assert result.size == (plan.placement.width, plan.placement.height)
    assert cp.grain_for(_photo(original, space), (0, 0), result, plan).is_none
