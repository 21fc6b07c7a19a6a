"""Colour matching in real GIMP 3.0 and 3.2, against the local server's drift scenario.

The drift scenario casts and softens fal's whole picture, as the model does; the seam metric
(``fal_local.metrics.seam_metric``: the mean step across each expanded side) must drop to at
most a quarter with ``color-match`` on, on RGB, GRAY, 16-bit and float images.  Without drift,
matching must leave the new pixels alone.  GIMP writes the visible result as raw bytes; the
measuring happens here, with numpy.
"""

from __future__ import annotations

import numpy as np
import pytest
from cli_support import photo
from flux_outpaint.geometry import Expansion, Rect
from flux_outpaint_fal_local.metrics import seam_metric

from .harness import local_server, run, server_env
from .sandbox import GimpSession

SIZE = (320, 240)
GROW = (96, 96, 48, 0)  # left, right, top, bottom
BLEND = 16
WHERE = Rect(GROW[0], GROW[2], *SIZE)
GROWN = Expansion(*(1 if g else 0 for g in GROW))
KINDS = (("rgb", "u8"), ("gray", "u8"), ("rgb", "u16"), ("rgb", "float"))


def _cases(kinds, recover=False):
    return [
        {
            "name": f"{base}-{precision}-{'on' if on else 'off'}",
            "base": base,
            "precision": precision,
            "color_match": on,
            "recover": recover and on,
        }
        for base, precision in kinds
        for on in (True, False)
    ]


def _batch(session, scenarios, cases):
    pixels = np.asarray(photo(*SIZE, seed=5).convert("RGBA"))
    (session.host_dir / "photo.rgba").write_bytes(pixels.tobytes())
    params = {"photo": "photo.rgba", "size": SIZE, "grow": GROW, "blend": BLEND, "cases": cases}
    with local_server(scenarios=scenarios) as server:
        report = run(session, "color_cases", params, server_env(server))
        submits = len(server.submits)
    images = {}
    for name, info in report["cases"].items():
        assert info["ok"], (name, info["message"])
        w, h = info["canvas"]
        result = (session.host_dir / f"{name}-result.rgba").read_bytes()
        original = (session.host_dir / f"{name}-original.rgba").read_bytes()
        images[name] = (
            np.frombuffer(result, np.uint8).reshape(h, w, 4)[..., :3],
            np.frombuffer(original, np.uint8).reshape(SIZE[1], SIZE[0], 4)[..., :3],
        )
    return report, submits, images


@pytest.fixture(scope="module", params=["trixie", "forky"], ids=["gimp3.0", "gimp3.2"])
def outcome(request, vendor_dir):
    """One GIMP start per server: with the drift scenario, and without faults."""
    session = GimpSession(request.param, vendor=lambda: vendor_dir)
    try:
        session.install_plugin()
        drift = _batch(session, ["drift"], _cases(KINDS, recover=True))
        plain = _batch(session, [], _cases(KINDS[:1]))
        yield {"drift": drift, "plain": plain}
    finally:
        session.close()


@pytest.mark.parametrize("kind", KINDS, ids=[f"{b}-{p}" for b, p in KINDS])
def test_colour_match_takes_the_drift_out_of_the_seam(outcome, kind):
    report, _, images = outcome["drift"]
    name = "-".join(kind)
    on_image, original = images[f"{name}-on"]
    off_image, _ = images[f"{name}-off"]
    on = seam_metric(on_image, original, WHERE, GROWN)
    off = seam_metric(off_image, original, WHERE, GROWN)
    # the drift shows as a seam without matching (in grey, less: the cast's channels average)
    assert off.mean() > (5 if kind[0] == "rgb" else 2.5), off
    assert on.mean() <= 0.25 * off.mean(), (on, off)
    print(f"{report['gimp']} {name}: seam metric on {on.mean():.2f}, off {off.mean():.2f}")
    assert report["cases"][f"{name}-on"]["precision"].startswith(kind[1])
    # the original is exact outside the blend band, whatever the setting
    top, left = GROW[2], GROW[0]
    inner = (slice(top + BLEND, top + SIZE[1]), slice(left + BLEND, left + SIZE[0] - BLEND))
    for image in (on_image, off_image):
        assert np.array_equal(image[inner], original[BLEND:, BLEND:-BLEND])
    for state in ("on", "off"):
        assert report["cases"][f"{name}-{state}"]["source_unchanged"]


def test_one_submit_per_run(outcome):
    _, submits, images = outcome["drift"]
    assert submits == len(images)  # each run once; recover submits nothing


def test_recover_places_the_result_as_the_run_did(outcome):
    report, _, _ = outcome["drift"]
    for base, precision in KINDS:
        info = report["cases"][f"{base}-{precision}-on"]
        assert info["recover_ok"] and info["recover_same"], info


def test_without_drift_matching_leaves_the_new_pixels_alone(outcome):
    report, _, images = outcome["plain"]
    matched, original = images["rgb-u8-on"]
    plain, _ = images["rgb-u8-off"]
    band = np.ones(matched.shape[:2], bool)
    band[WHERE.y : WHERE.bottom, WHERE.x : WHERE.right] = False
    change = np.abs(matched.astype(int) - plain.astype(int))[band].mean()
    print(f"{report['gimp']} no drift: matching changed the new pixels by {change:.3f}")
    assert change <= 1.0, change
