"""Content the model changed near the seam: the moved-object scenario's bright disc.

A real model does not return the original untouched under its fill: an object near the edge
comes back shifted, or one appears that was not there.  ``with_object`` paints a bright,
saturated disc that straddles the original's edge on the first grown side (right, left, top,
bottom), centred a few pixels past the edge as if the model had moved it outward.  It covers
pixels over the original, where colour matching measures the drift, and pixels of the new
band.  What it does not model: a change of shape or texture, or several objects.
"""

from __future__ import annotations

import numpy as np

# Disc colour (R, G, B) and radius as a fraction of the original's short side (at least
# RADIUS_MIN_PX); its centre sits SHIFT_PX past the original's edge, into the new band.
COLOUR = (250.0, 236.0, 110.0)
RADIUS_FRACTION = 1 / 12
RADIUS_MIN_PX = 6
SHIFT_PX = 4


def disc(
    shape: tuple[int, int], rect: tuple[int, int, int, int], grown: tuple[int, int, int, int]
) -> tuple[float, float, float]:
    """Centre (y, x) and radius of the disc on a canvas of ``shape``; ``rect`` is the
    original's (top, left, h, w) and ``grown`` its margins (left, right, top, bottom)."""
    top, left, h, w = rect
    radius = max(float(RADIUS_MIN_PX), min(h, w) * RADIUS_FRACTION)
    g_left, g_right, g_top, g_bottom = grown
    if g_right:
        return top + h / 2, left + w - 0.5 + SHIFT_PX, radius
    if g_left:
        return top + h / 2, left - 0.5 - SHIFT_PX, radius
    if g_top:
        return top - 0.5 - SHIFT_PX, left + w / 2, radius
    return top + h - 0.5 + SHIFT_PX, left + w / 2, radius


def with_object(
    pixels: np.ndarray, rect: tuple[int, int, int, int], grown: tuple[int, int, int, int]
) -> np.ndarray:
    """The canvas (H×W×3 uint8) with the disc painted over it, its rim anti-aliased."""
    cy, cx, radius = disc(pixels.shape[:2], rect, grown)
    ys = np.arange(pixels.shape[0], dtype=np.float32)[:, None]
    xs = np.arange(pixels.shape[1], dtype=np.float32)[None, :]
    r = np.sqrt((ys - cy) ** 2 + (xs - cx) ** 2)
    cover = np.clip(radius + 0.5 - r, 0.0, 1.0)[..., None]
    out = pixels.astype(np.float32) * (1.0 - cover) + np.asarray(COLOUR, np.float32) * cover
    painted: np.ndarray = (out + 0.5).astype(np.uint8)
    return painted
