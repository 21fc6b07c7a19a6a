"""greyscale: colour pixels made grey by the plug-in's own arithmetic (GIMP's luminance of
linear light, sRGB-encoded), checked against a float computation with numpy."""

from __future__ import annotations

import numpy as np
import pytest
from flux_outpaint import greyscale


def _reference(rgb: np.ndarray) -> np.ndarray:
    f = rgb / 255.0
    linear = np.where(f <= 0.04045, f / 12.92, ((f + 0.055) / 1.055) ** 2.4)
    y = linear @ np.array(greyscale.WEIGHTS)
    encoded = np.where(y <= 0.0031308, 12.92 * y, 1.055 * y ** (1 / 2.4) - 0.055)
    out: np.ndarray = np.round(255 * encoded)
    return out


def test_colours_get_the_luminance_of_linear_light_within_a_rounding():
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (200_000, 4), dtype=np.uint8)
    out = np.frombuffer(greyscale.to_grey_alpha(rgba.tobytes()), np.uint8).reshape(-1, 2)
    diff = out[:, 0].astype(int) - _reference(rgba[:, :3])
    assert np.abs(diff).max() <= 1  # fixed point: a level off only at a rounding's edge
    assert (diff != 0).mean() < 0.02
    assert np.array_equal(out[:, 1], rgba[:, 3])  # alpha untouched


def test_a_grey_pixel_keeps_its_level_exactly():
    levels = np.arange(256, dtype=np.uint8)
    rgba = np.stack([levels, levels, levels, 255 - levels], axis=-1)
    out = np.frombuffer(greyscale.to_grey_alpha(rgba.tobytes()), np.uint8).reshape(-1, 2)
    assert np.array_equal(out[:, 0], levels)
    assert np.array_equal(out[:, 1], 255 - levels)


def test_primaries_weigh_as_their_luminance():
    rgba = bytes([255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 255, 255, 255, 255])
    grey = greyscale.to_grey_alpha(rgba)[0::2]
    # red 0.2225, green 0.7169, blue 0.0606 of white's light, sRGB-encoded
    assert list(grey) == [130, 220, 70, 255]


def test_the_same_pixels_always_give_the_same_bytes():
    rgba = np.random.default_rng(5).integers(0, 256, (64, 4), dtype=np.uint8).tobytes()
    assert greyscale.to_grey_alpha(rgba) == greyscale.to_grey_alpha(bytes(bytearray(rgba)))


def test_a_buffer_not_in_fours_is_refused():
    with pytest.raises(ValueError):
        greyscale.to_grey_alpha(b"\x00" * 6)
