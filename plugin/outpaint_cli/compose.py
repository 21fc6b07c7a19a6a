"""Put a returned outpaint image and the original together, as the CLI writes them.

The result covers the whole canvas; the original goes back on top through the seam mask
(``Placement.mask``, the same mask the GIMP plug-in puts on its layer), so everything
outside the seam band is the original, bit for bit, at full resolution.
"""

from __future__ import annotations

import numpy as np
from outpaint.framing import Placement, check_size
from outpaint.planning import Plan
from PIL import Image


def fit_result(result: Image.Image, plan: Plan) -> Image.Image:
    """Scale the returned image onto the plan's placement, or refuse a wrong one clearly."""
    check_size(result.size, plan.request_output)
    place = plan.placement
    if result.size != (place.width, place.height):
        result = result.resize((place.width, place.height), Image.Resampling.LANCZOS)
    return result


def compose(
    original: Image.Image, origin: tuple[int, int], result: Image.Image, plan: Plan, seam_blend: int
) -> Image.Image:
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
    where = Placement.from_plan(plan, seam_blend)
    alpha = np.frombuffer(where.mask(reference), np.uint8).reshape(
        reference.height, reference.width
    )

    out = np.asarray(canvas).copy()
    region = out[reference.y : reference.bottom, reference.x : reference.right]
    orig = np.asarray(ref_pixels)
    # The mask is the new layer's opacity: 0 keeps the original exactly.
    # (o*255 + 127) // 255 == o, so a 0 weight leaves the original bit-exact.
    weight = alpha.astype(np.uint32)[..., None]
    blended = region.astype(np.uint32) * weight + orig.astype(np.uint32) * (255 - weight) + 127
    region[...] = (blended // 255).astype(np.uint8)
    return Image.fromarray(out, mode)
