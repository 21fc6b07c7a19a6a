"""In-GIMP step times at 1, 4 and 16 MP: read, encode, decode, place.  Printed, not asserted.

The steps are the glue's own functions, called inside GIMP exactly as a run calls them; the
network is left out (it is the server's time, not GIMP's).  The canvas is 4:3 with the layer
inset by a tenth on every side, so the 16 MP case takes the downscale path: the reference is
read at the plan's scale, and placing includes scaling the result up to the canvas (where the
mask shows it).  scripts/bench_gimp.py times whole calls through the PDB.
"""

from __future__ import annotations

import pytest

from .test_plugin_helpers import PLUGIN_DIR_CODE, run

SIZES_MP = (1, 4, 16)

BODY = (
    PLUGIN_DIR_CODE
    + r"""
import math
from gimp_glue import pixels, placement, source
from outpaint import framing, payload, planning

def timed(fn, *a, **k):
    t = time.perf_counter()
    out = fn(*a, **k)
    return out, round((time.perf_counter() - t) * 1000, 1)

for mp in SIZES:
    w = int(math.sqrt(mp * 1048576 * 4 / 3))
    h = w * 3 // 4
    lx, ly = w // 10, h // 10
    img, layer = make_image(w, h, lx, ly, w - 2 * lx, h - 2 * ly)
    rect = source.layer_rect(layer)
    auto = framing.automatic(w, h, rect, source.alpha_reader(layer, rect))
    framed = framing.frame(auto, w, h, {})
    plan = planning.make_plan(framed.source)
    where = framing.Placement.from_plan(plan, 16, framed.origin, framed.growth)
    rw, rh = plan.request_reference
    (full, alpha), t_read = timed(pixels.read_pixels, layer,
                                  auto.reference.translate(-rect.x, -rect.y))
    ref, t_resample = timed(pixels.shrink, full, auto.reference.width,
                            auto.reference.height, alpha, (rw, rh))
    chosen = payload.choose_encoding(payload.has_alpha(ref), rw, rh)
    _, t_jpeg = timed(pixels.encode, ref, rw, rh, payload.Encoding("jpeg"))
    _, t_png = timed(pixels.encode, ref, rw, rh, payload.Encoding("png"))
    ow, oh = plan.request_output
    result_png = pixels.encode(pattern(ow, oh, seed=5), ow, oh, payload.Encoding("png"))
    result_jpeg = pixels.encode(pattern(ow, oh, seed=5), ow, oh, payload.Encoding("jpeg"))
    (rgba, dw, dh), t_dec_png = timed(pixels.decode, result_png)
    _, t_dec_jpeg = timed(pixels.decode, result_jpeg)
    _, t_mask = timed(where.mask)
    _, t_place = timed(placement.apply, img, layer, rgba, dw, dh, where)
    report(**{f"{mp}MP": {"canvas": [w, h], "request": [ow, oh], "scale": round(plan.scale, 3),
              "encoding": chosen.format, "read_ms": t_read,
              "resample_ms": t_resample, "encode_jpeg_ms": t_jpeg,
              "encode_png_ms": t_png, "decode_png_ms": t_dec_png,
              "decode_jpeg_ms": t_dec_jpeg, "mask_ms": t_mask, "place_ms": t_place}})
    img.delete()
"""
)


@pytest.mark.parametrize("sandbox", ["trixie", "forky"], ids=["gimp3.0", "gimp3.2"])
def test_print_step_timings(sandbox, vendor_dir, capsys):
    from .sandbox import GimpSession

    session = GimpSession(sandbox, vendor=lambda: vendor_dir)
    try:
        session.install_plugin()
        report = run(session, f"SIZES = {SIZES_MP!r}\n" + BODY, {}, timeout=900)
    finally:
        session.close()
    lines = [
        f"GIMP {session.gimp_version}: in-GIMP step times (ms); place includes the "
        "mask and, when downscaled, scaling the result up"
    ]
    for mp in SIZES_MP:
        r = report[f"{mp}MP"]
        lines.append(
            f"  {mp:>2} MP {r['canvas'][0]}x{r['canvas'][1]} -> request {r['request'][0]}x"
            f"{r['request'][1]} (scale {r['scale']}, sends {r['encoding']}): "
            f"read {r['read_ms']} + resample {r['resample_ms']}, encode jpeg "
            f"{r['encode_jpeg_ms']} / png {r['encode_png_ms']}"
            f", decode png {r['decode_png_ms']} / jpeg {r['decode_jpeg_ms']}, "
            f"mask {r['mask_ms']}, place {r['place_ms']}"
        )
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert set(report) == {f"{mp}MP" for mp in SIZES_MP}
