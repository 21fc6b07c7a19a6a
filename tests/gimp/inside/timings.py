"""Batch of test_plugin_timings.py: the glue's own steps, timed inside GIMP.

``params["sizes_mp"]``: the canvas sizes in megapixels (4:3, the layer inset by a tenth).
"""

from __future__ import annotations

import math
import time

from prelude import make_image, pattern, use_plugin_modules
from reporting import report


def timed(fn, *a, **k):
    t = time.perf_counter()
    out = fn(*a, **k)
    return out, round((time.perf_counter() - t) * 1000, 1)


def main(params):
    use_plugin_modules()
    from flux_outpaint import framing, payload, planning
    from gimp_glue import pixels, placement, source

    for mp in params["sizes_mp"]:
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
        (full, alpha), t_read = timed(
            pixels.read_pixels, layer, auto.reference.translate(-rect.x, -rect.y)
        )
        ref, t_resample = timed(
            pixels.shrink, full, auto.reference.width, auto.reference.height, alpha, (rw, rh)
        )
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
        report(
            **{
                f"{mp}MP": {
                    "canvas": [w, h],
                    "request": [ow, oh],
                    "scale": round(plan.scale, 3),
                    "encoding": chosen.format,
                    "read_ms": t_read,
                    "resample_ms": t_resample,
                    "encode_jpeg_ms": t_jpeg,
                    "encode_png_ms": t_png,
                    "decode_png_ms": t_dec_png,
                    "decode_jpeg_ms": t_dec_jpeg,
                    "mask_ms": t_mask,
                    "place_ms": t_place,
                }
            }
        )
        img.delete()
