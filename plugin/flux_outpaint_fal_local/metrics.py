"""How visible a seam is: the figure the drift scenario and colour matching are judged by.

``seam_metric`` compares, along every expanded side, the original's outermost pixels with
the first new pixels just outside them.  The differences are averaged over
``SEGMENT``-pixel runs along the seam before their absolute value is taken: texture that
differs pixel by pixel (and that no colour correction can or should remove) cancels out,
and what remains is the step in colour and tone a viewer sees as a line.  The figure is per
channel, in 8-bit levels; 0 is a seamless join.

The moved-object scenario (``objects``) puts a disc across one seam: there the step is the
object's edge, not a seam, so ``seams_away_from_object`` leaves that run out, and
``band_change_away_from_object`` says whether the object dragged the colour correction
(a cast spread into the band far from it).
"""

from __future__ import annotations

import numpy as np
from flux_outpaint.geometry import Expansion, Rect

from . import objects

SEGMENT = 16


def seam_metric(
    output: np.ndarray, original: np.ndarray, where: Rect, grown: Expansion
) -> np.ndarray:
    """Per channel: the mean |step| across the seam.  ``output`` is the whole written canvas
    (H×W×C, 8-bit), ``original`` the original's pixels (h×w×C) and ``where`` their place on
    the canvas; ``grown`` says which sides were expanded (non-zero)."""
    a = output.astype(np.float64)
    o = original.astype(np.float64)
    channels = a.shape[2]
    pairs = []
    if grown.left:
        pairs.append((a[where.y : where.bottom, where.x - 1], o[:, 0]))
    if grown.right:
        pairs.append((a[where.y : where.bottom, where.right], o[:, -1]))
    if grown.top:
        pairs.append((a[where.y - 1, where.x : where.right], o[0, :]))
    if grown.bottom:
        pairs.append((a[where.bottom, where.x : where.right], o[-1, :]))
    steps = []
    for new, old in pairs:
        n = len(new) // SEGMENT * SEGMENT
        if n:
            step = (new[:n] - old[:n]).reshape(-1, SEGMENT, channels).mean(axis=1)
            steps.append(np.abs(step))
    if not steps:
        raise ValueError("no expanded side of at least one segment's length")
    per_channel: np.ndarray = np.concatenate(steps).mean(axis=0)
    return per_channel


# The side the moved object straddles: the first grown one in this order (``objects.disc``).
OBJECT_SIDES = ("right", "left", "top", "bottom")
# The seam figure leaves out the run within this many radii of the object's centre; the
# band's change is measured beyond FAR_RADII.
NEAR_RADII = 2
FAR_RADII = 3


def seams_away_from_object(
    output: np.ndarray, original: np.ndarray, where: Rect, grown: tuple[int, int, int, int]
) -> dict[str, float]:
    """The moved-object scenario's seam figure: ``seam_metric`` per grown side (the mean of
    its channels), and on the side the disc straddles (``objects.disc``) only along the seam
    more than ``NEAR_RADII`` radii from the disc's centre, where the object's own edge is no
    seam.  ``grown``: the margins (left, right, top, bottom); the rest as for ``seam_metric``."""
    h, w = original.shape[:2]
    amounts = dict(zip(("left", "right", "top", "bottom"), grown, strict=True))
    figures = {
        side: float(seam_metric(output, original, where, Expansion(**{side: 1})).mean())
        for side, amount in amounts.items()
        if amount
    }
    side = next(name for name in OBJECT_SIDES if amounts[name])
    cy, cx, radius = objects.disc(output.shape[:2], (where.y, where.x, h, w), grown)
    centre, length = (cy - where.y, h) if side in ("left", "right") else (cx - where.x, w)
    keep = np.r_[0 : int(centre - NEAR_RADII * radius), int(centre + NEAR_RADII * radius) : length]
    a, o = output.astype(np.float64), original.astype(np.float64)
    if side == "right":
        new, old = a[where.y + keep, where.right], o[keep, -1]
    elif side == "left":
        new, old = a[where.y + keep, where.x - 1], o[keep, 0]
    elif side == "top":
        new, old = a[where.y - 1, where.x + keep], o[0, keep]
    else:
        new, old = a[where.bottom, where.x + keep], o[-1, keep]
    n = len(keep) // SEGMENT * SEGMENT
    step = (new[:n] - old[:n]).reshape(-1, SEGMENT, a.shape[2]).mean(axis=1)
    figures[side] = float(np.abs(step).mean())
    return figures


def band_change_away_from_object(
    output: np.ndarray, other: np.ndarray, where: Rect, grown: tuple[int, int, int, int]
) -> np.ndarray:
    """Per channel: the mean of ``output`` − ``other`` over the new band more than
    ``FAR_RADII`` radii from the moved object (``other``: the same run without the object,
    e.g. the drift alone).  Near 0 when the object spread no cast into the band."""
    h, w = where.height, where.width
    cy, cx, radius = objects.disc(output.shape[:2], (where.y, where.x, h, w), grown)
    ys, xs = np.mgrid[0 : output.shape[0], 0 : output.shape[1]]
    band = np.ones(output.shape[:2], bool)
    band[where.y : where.bottom, where.x : where.right] = False
    band &= np.hypot(ys - cy, xs - cx) > FAR_RADII * radius
    change: np.ndarray = (output.astype(np.float64) - other.astype(np.float64))[band].mean(axis=0)
    return change
