"""How visible a seam is: the figure the drift scenario and colour matching are judged by.

``seam_metric`` compares, along every expanded side, the original's outermost pixels with
the first new pixels just outside them.  The differences are averaged over
``SEGMENT``-pixel runs along the seam before their absolute value is taken: texture that
differs pixel by pixel (and that no colour correction can or should remove) cancels out,
and what remains is the step in colour and tone a viewer sees as a line.  The figure is per
channel, in 8-bit levels; 0 is a seamless join.
"""

from __future__ import annotations

import numpy as np
from flux_outpaint.geometry import Expansion, Rect

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
