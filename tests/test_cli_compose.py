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
