"""Put a returned outpaint image and the original together, as the CLI writes them.

The output is the original, untouched, plus the new bands around it taken from fal's image;
only the new bands (and the seam strips just inside the expanded edges) are resampled and
colour-converted, so the cost grows with the new area, not with the whole canvas.  In the
seam strips fal's pixels fade in through ``Placement.mask`` (the mask the GIMP plug-in puts
on its layer); everywhere else the original's samples are copied bit for bit, at their own
depth and in their own colour space.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from outpaint.framing import Placement, check_size
from outpaint.geometry import Rect
from outpaint.planning import Plan
from PIL import Image

from . import photo as ph


def new_area(plan: Plan) -> Iterator[Rect]:
    """The canvas outside the reference: up to four rectangles that do not overlap."""
    src = plan.source
    ref, w, h = src.reference, src.canvas_width, src.canvas_height
    candidates = (
        Rect(0, 0, w, ref.y),
        Rect(0, ref.bottom, w, h - ref.bottom),
        Rect(0, ref.y, ref.x, ref.height),
        Rect(ref.right, ref.y, w - ref.right, ref.height),
    )
    return (r for r in candidates if not r.is_empty)


def seam_strips(plan: Plan, blend: int) -> Iterator[Rect]:
    """The strips just inside the reference's grown sides where the mask ramps."""
    ref, sides = plan.source.reference, plan.source.expansion.sides()
    top = min(blend, ref.height) if sides.top else 0
    bottom = min(blend, ref.height - top) if sides.bottom else 0
    left = min(blend, ref.width) if sides.left else 0
    right = min(blend, ref.width - left) if sides.right else 0
    middle = ref.height - top - bottom
    candidates = (
        Rect(ref.x, ref.y, ref.width, top),
        Rect(ref.x, ref.bottom - bottom, ref.width, bottom),
        Rect(ref.x, ref.y + top, left, middle),
        Rect(ref.right - right, ref.y + top, right, middle),
    )
    return (r for r in candidates if not r.is_empty)


def piece(result: Image.Image, plan: Plan, area: Rect) -> Image.Image:
    """fal's pixels for ``area`` (canvas coordinates), scaled onto the placement."""
    place = plan.placement
    if result.size == (place.width, place.height):
        x, y = area.x - place.x, area.y - place.y
        return result.crop((x, y, x + area.width, y + area.height))
    sx, sy = result.width / place.width, result.height / place.height
    box = (
        (area.x - place.x) * sx,
        (area.y - place.y) * sy,
        (area.right - place.x) * sx,
        (area.bottom - place.y) * sy,
    )
    return result.resize((area.width, area.height), Image.Resampling.LANCZOS, box=box)


def compose(
    photo: ph.Photo, origin: tuple[int, int], result: Image.Image, plan: Plan, seam_blend: int
) -> np.ndarray:
    """The full canvas as H×W×C samples in the photo's own colour space and depth.

    ``origin`` is where the photo's pixel (0, 0) sits on the canvas; the part that was sent
    is ``plan.source.reference`` (canvas coordinates).
    """
    check_size(result.size, plan.request_output)
    src = plan.source
    space = photo.space
    result = result.convert("RGBA" if space.alpha else "RGB")
    canvas = np.zeros(
        (src.canvas_height, src.canvas_width, space.channels), dtype=photo.pixels.dtype
    )
    ox, oy = origin
    canvas[oy : oy + photo.height, ox : ox + photo.width] = photo.pixels
    profile = photo.colour_profile
    for area in new_area(plan):
        canvas[area.y : area.bottom, area.x : area.right] = _converted(
            piece(result, plan, area), photo, profile
        )
    if seam_blend > 0:
        where = Placement.from_plan(plan, seam_blend)
        for area in seam_strips(plan, seam_blend):
            mask = np.frombuffer(where.mask(area), np.uint8).reshape(area.height, area.width)
            new = _converted(piece(result, plan, area), photo, profile)
            old = canvas[area.y : area.bottom, area.x : area.right]
            old[...] = _blend(new, old, mask[..., None])
    return canvas


def _converted(part: Image.Image, photo: ph.Photo, profile) -> np.ndarray:
    """fal's sRGB pixels as samples of the photo's colour space and depth."""
    space = photo.space
    colour = ph.from_srgb(part.convert("RGB"), space, profile)
    values = np.asarray(colour)
    if values.ndim == 2:
        values = values[..., None]
    if space.alpha:
        alpha = np.asarray(part.getchannel("A"))[..., None]
        values = np.concatenate([values, alpha], axis=-1)
    return ph.from_8bit(values, space.dtype, photo.pixels)


def _blend(new: np.ndarray, old: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``weight`` (0–255) of ``new`` over ``old``; a 0 weight leaves ``old`` exact."""
    if old.dtype == np.float32:
        w = weight.astype(np.float32) / 255.0
        return (new * w + old * (1.0 - w)).astype(np.float32)
    wide = np.uint64 if old.dtype == np.uint16 else np.uint32
    w = weight.astype(wide)
    # (o*255 + 127) // 255 == o: the original comes back exactly where the weight is 0.
    mixed = (new.astype(wide) * w + old.astype(wide) * (255 - w) + 127) // 255
    return mixed.astype(old.dtype)
