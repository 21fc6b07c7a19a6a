"""Put a returned outpaint image and the original together, as the CLI writes them.

The result covers the whole canvas; the original goes back on top through the seam mask
from ``outpaint.seam`` (the same mask the GIMP plug-in puts on its layer), so everything
outside the seam band is the original, bit for bit, at full resolution.
"""

from __future__ import annotations

import numpy as np
from outpaint.errors import ResultError
from outpaint.geometry import Expansion, Rect
from outpaint.planning import Plan
from outpaint.seam import mask_bytes
from PIL import Image

# A returned image whose aspect ratio is off by more than this is not the one we asked for.
ASPECT_TOLERANCE = 0.02


def fit_result(result: Image.Image, plan: Plan) -> Image.Image:
    """Scale the returned image onto the plan's placement, or refuse a wrong one clearly."""
    want_w, want_h = plan.request_output
    got_w, got_h = result.size
    if (got_w, got_h) != (want_w, want_h):
        ratio = (got_w / got_h) / (want_w / want_h)
        if abs(ratio - 1.0) > ASPECT_TOLERANCE:
            raise ResultError(
                f"fal returned {got_w}×{got_h} instead of {want_w}×{want_h}; not placing it"
            )
    place = plan.placement
    if result.size != (place.width, place.height):
        result = result.resize((place.width, place.height), Image.Resampling.LANCZOS)
    return result


def compose(original: Image.Image, origin: tuple[int, int], result: Image.Image, plan: Plan,
            seam_blend: int) -> Image.Image:
    """The full canvas: result everywhere, original over it through the seam mask.

    ``original`` is the whole input image and ``origin`` where its pixel (0, 0) sits on the
    canvas; the part that was sent is ``plan.source.reference`` (canvas coordinates).
    """
    src = plan.source
    reference = src.reference
    mode = "RGBA" if original.mode in ("RGBA", "LA", "PA") else "RGB"
    fitted = fit_result(result, plan).convert(mode)
    canvas = Image.new(mode, (src.canvas_width, src.canvas_height))
    canvas.paste(fitted, (plan.placement.x, plan.placement.y))

    x0, y0 = reference.x - origin[0], reference.y - origin[1]
    ref_pixels = original.convert(mode).crop((x0, y0, x0 + reference.width, y0 + reference.height))
    exp = src.expansion
    sides = Expansion(
        left=int(exp.left > 0), right=int(exp.right > 0),
        top=int(exp.top > 0), bottom=int(exp.bottom > 0),
    )
    local_ref = Rect(0, 0, reference.width, reference.height)
    alpha = np.frombuffer(
        mask_bytes(reference.width, reference.height, local_ref, sides, seam_blend), np.uint8
    ).reshape(reference.height, reference.width)

    out = np.asarray(canvas).copy()
    region = out[reference.y:reference.bottom, reference.x:reference.right]
    orig = np.asarray(ref_pixels)
    # The mask is the new layer's opacity: 0 keeps the original exactly.
    # (o*255 + 127) // 255 == o, so a 0 weight leaves the original bit-exact.
    weight = alpha.astype(np.uint32)[..., None]
    blended = region.astype(np.uint32) * weight + orig.astype(np.uint32) * (255 - weight) + 127
    region[...] = (blended // 255).astype(np.uint8)
    return Image.fromarray(out, mode)
