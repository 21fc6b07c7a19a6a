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
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from flux_outpaint.framing import Placement, check_size
from flux_outpaint.geometry import Rect
from flux_outpaint.grain import MIN_SCALE, NONE, Grain, decide, noise_sigma, probes, seed_for
from flux_outpaint.planning import Plan
from PIL import Image, ImageCms

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


def start_canvas(photo: ph.Photo, plan: Plan, origin: tuple[int, int]) -> np.ndarray:
    """The canvas with the original in place and the new area still empty; it needs no
    result, so it is made while fal works."""
    src = plan.source
    values = photo.array()
    canvas = np.empty(
        (src.canvas_height, src.canvas_width, photo.space.channels), dtype=values.dtype
    )
    ox, oy = origin
    canvas[oy : oy + photo.height, ox : ox + photo.width] = values
    return canvas


def fill(
    canvas: np.ndarray,
    photo: ph.Photo,
    result: Image.Image,
    plan: Plan,
    seam_blend: int,
    threads: int = 2,
    grain: Grain = NONE,
) -> np.ndarray:
    """fal's pixels into the new area and the seam strips of ``start_canvas``'s canvas.

    The bands are resampled in ``threads`` threads (Pillow releases the GIL while it
    resamples and converts colours).  ``grain``: added to enlarged pixels (see
    ``flux_outpaint.grain``).
    """
    check_size(result.size, plan.request_output)
    space = photo.space
    wanted = "RGBA" if space.alpha else "RGB"
    if result.mode != wanted:
        result = result.convert(wanted)
    profile = photo.colour_profile
    where = Placement.from_plan(plan, seam_blend) if seam_blend > 0 else None
    work = [(area, False) for area in new_area(plan)]
    if where is not None:
        work += [(area, True) for area in seam_strips(plan, seam_blend)]

    def paint(job: tuple[Rect, bool]) -> None:
        area, blend = job
        part = piece(result, plan, area)
        if not grain.is_none and result.size != (plan.placement.width, plan.placement.height):
            part = grained(part, grain, area)
        new = _converted(part, photo, profile)
        target = canvas[area.y : area.bottom, area.x : area.right]
        if blend:
            assert where is not None
            mask = np.frombuffer(where.mask(area), np.uint8).reshape(area.height, area.width)
            target[...] = _blend(new, target, mask[..., None])
        else:
            target[...] = new

    if threads > 1 and len(work) > 1:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(paint, work))
    else:
        for job in work:
            paint(job)
    return canvas


# Grain is drawn this many rows at a time (float32 noise for a whole band would be large).
GRAIN_ROWS = 256


def grained(part: Image.Image, grain: Grain, area: Rect) -> Image.Image:
    """``part`` (8-bit RGB(A), the pixels of ``area``) with ``grain`` added: luma noise
    shared by the three channels plus independent chroma noise, seeded by the grain's seed
    and the rows' place on the canvas (the same pixels on every run)."""
    values = np.array(part)
    for y0 in range(0, area.height, GRAIN_ROWS):
        rows = values[y0 : y0 + GRAIN_ROWS, :, :3]
        rng = np.random.default_rng([grain.seed, area.x, area.y + y0, area.width])
        noise = rng.standard_normal(rows.shape[:2] + (1,), dtype=np.float32) * grain.luma
        noise = noise + rng.standard_normal(rows.shape, dtype=np.float32) * grain.chroma
        noise += rows
        np.clip(noise, 0.0, 255.0, out=noise)
        rows[...] = np.rint(noise).astype(np.uint8)
    return Image.fromarray(values, part.mode)


def compose(
    photo: ph.Photo,
    origin: tuple[int, int],
    result: Image.Image,
    plan: Plan,
    seam_blend: int,
    grain: Grain = NONE,
) -> np.ndarray:
    """The full canvas as H×W×C samples in the photo's own colour space and depth.

    ``origin`` is where the photo's pixel (0, 0) sits on the canvas; the part that was sent
    is ``plan.source.reference`` (canvas coordinates).
    """
    check_size(result.size, plan.request_output)
    canvas = start_canvas(photo, plan, origin)
    return fill(canvas, photo, result, plan, seam_blend, grain=grain)


def _converted(
    part: Image.Image, photo: ph.Photo, profile: ImageCms.ImageCmsProfile | None
) -> np.ndarray:
    """fal's sRGB pixels as samples of the photo's colour space and depth."""
    space = photo.space
    colour = ph.from_srgb(part if part.mode == "RGB" else part.convert("RGB"), space, profile)
    values = np.asarray(colour)
    if values.ndim == 2:
        values = values[..., None]
    if space.alpha:
        alpha = np.asarray(part.getchannel("A"))[..., None]
        values = np.concatenate([values, alpha], axis=-1)
    return ph.from_8bit(values, space.dtype, photo.array())


def _blend(new: np.ndarray, old: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``weight`` (0–255) of ``new`` over ``old``; a 0 weight leaves ``old`` exact."""
    if old.dtype == np.float32:
        w = weight.astype(np.float32) / 255.0
        mixed: np.ndarray = new * w + old * (1.0 - w)
        return mixed.astype(np.float32)
    wide = np.uint64 if old.dtype == np.uint16 else np.uint32
    w = weight.astype(wide)
    # (o*255 + 127) // 255 == o: the original comes back exactly where the weight is 0.
    mixed = (new.astype(wide) * w + old.astype(wide) * (255 - w) + 127) // 255
    return mixed.astype(old.dtype)


def grain_for(photo: ph.Photo, origin: tuple[int, int], result: Image.Image, plan: Plan) -> Grain:
    """The grain an enlarged band needs beside ``photo`` (``flux_outpaint.grain``): the
    original's noise just inside its most grown side against the enlarged band's just
    outside it, both at the canvas's pixel scale."""
    place = plan.placement
    scale = place.width / result.width
    found = probes(plan.source.reference, plan.source.expansion)
    if scale < MIN_SCALE or found is None:
        return NONE
    inside, outside = found
    ox, oy = origin
    box = (inside.x - ox, inside.y - oy, inside.right - ox, inside.bottom - oy)
    original = photo.rgba8(box, (inside.width, inside.height))
    band = piece(result, plan, outside).convert("RGBA").tobytes()
    seed = seed_for(result.tobytes(), place.x, place.y, place.width, place.height)
    return decide(
        noise_sigma(original, inside.width, inside.height),
        noise_sigma(band, outside.width, outside.height),
        scale,
        seed,
    )
