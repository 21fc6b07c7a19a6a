"""Colour matching through the CLI against the local server's drift scenario."""

from __future__ import annotations

import numpy as np
import pytest
from cli_support import keyed, make_env, photo, run, text
from flux_outpaint.geometry import Expansion, Rect
from flux_outpaint_fal_local import start_server
from flux_outpaint_fal_local.metrics import seam_metric
from PIL import Image

pytestmark = pytest.mark.server  # the local fal server on loopback

LEFT, RIGHT, TOP = 96, 96, 48


def outpaint(tmp_path, scenario: str | None, *extra) -> np.ndarray:
    src = tmp_path / "in.png"
    if not src.exists():
        photo(320, 240, seed=5).save(src)
    out = tmp_path / f"out-{scenario}-{len(extra)}.png"
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
