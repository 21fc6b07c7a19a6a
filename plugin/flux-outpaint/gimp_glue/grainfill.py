"""The seam's two corrections inside GIMP: where the colour field applies, and the grain.

Both run without numpy.  The colour field is applied to the decoded result (at most fal's
4 MP) by ``flux_outpaint.colormatch`` on the rectangles the mask will show.  Grain is added to
enlarged pixels only, chunk by chunk as ``placement.fill_layer`` makes them: a table makes
room for the noise (``flux_outpaint.grain.precompensation``, once, on the result before it is
enlarged), then GdkPixbuf composites seeded random bytes over each enlarged chunk at a small
opacity, one byte a pixel carrying both the luma grain and each channel's chroma grain
(``flux_outpaint.grain.noise_tables``).  All of it is C (slices, ``bytes.translate``,
GdkPixbuf); every chunk draws its own bytes, so nothing repeats.
"""

from __future__ import annotations

from collections.abc import Callable

from flux_outpaint import colormatch, grain
from flux_outpaint.framing import Placement
from flux_outpaint.geometry import Rect
from flux_outpaint.grain import NONE, Grain
from flux_outpaint.planning import Plan
from gi.repository import Gimp

from . import pixels

# Enlarged pixels beyond what the mask shows get the field too (see placement.MARGIN).
FIELD_MARGIN = 64


def field_areas(where: Placement, width: int, height: int) -> list[Rect]:
    """Where a result of ``width``×``height`` will show: the field's rectangles."""
    layer = Rect(0, 0, where.rect.width, where.rect.height)
    return colormatch.on_result(where.shown(margin=FIELD_MARGIN), layer, (width, height))


def decide(
    layer: Gimp.Drawable,
    layer_rect: Rect,
    original: Rect,
    where: Placement,
    plan: Plan,
    rgba: bytes,
    size: tuple[int, int],
) -> Grain:
    """The grain the enlarged band needs: the source ``layer``'s noise (``layer_rect`` its
    place on the image, ``original`` the reference's, both before any growth) just inside the
    most grown side, against the enlarged result's just outside it."""
    width, height = size
    scale = where.rect.width / width
    found = grain.probes(where.reference, plan.source.expansion)
    if scale < grain.MIN_SCALE or found is None:
        return NONE
    inside, outside = found
    dx = original.x - where.reference.x - layer_rect.x
    dy = original.y - where.reference.y - layer_rect.y
    data, alpha = pixels.read_pixels(layer, inside.translate(dx, dy))
    if not alpha:
        data = _with_alpha(data, inside.width * inside.height)
    enlarged = pixels.enlarger(rgba, width, height, (where.rect.width, where.rect.height))
    band = enlarged(outside.translate(-where.rect.x, -where.rect.y))
    r = where.rect
    return grain.decide(
        grain.noise_sigma(data, inside.width, inside.height),
        grain.noise_sigma(band, outside.width, outside.height),
        scale,
        grain.seed_for(rgba, r.x, r.y, r.width, r.height),
    )


def _with_alpha(rgb: bytes, count: int) -> bytes:
    out = bytearray(b"\xff" * (count * 4))
    for c in range(3):
        out[c::4] = rgb[c::3]
    return bytes(out)


Overlay = Callable[[Rect], "tuple[bytes, int] | None"]


def enlarging(rgba: bytes, width: int, height: int, made: Grain) -> tuple[bytes, Overlay | None]:
    """What ``pixels.enlarger`` needs to add ``made`` while it enlarges ``rgba``: the pixels
    with room made for the noise, and the overlay of each rectangle.

    The table that makes room is per level and nearly affine, so it is applied once to the
    result (at most 4 MP) instead of to every enlarged chunk; the noise is then composited
    straight onto the enlarged pixbuf.  A result with transparency is enlarged as it is, with
    no grain (its alpha must not be touched)."""
    if made.is_none or rgba[3::4].count(255) != width * height:
        return rgba, None
    alpha, tables = grain.noise_tables(made)
    if alpha == 0:
        return rgba, None

    def overlay(area: Rect) -> tuple[bytes, int]:
        count = area.width * area.height
        stream = grain.noise_bytes(made.seed, (area.x, area.y, area.width, area.height), count)
        noise = bytearray(b"\xff" * (count * 4))
        for c in range(3):
            noise[c::4] = stream.translate(tables[c])
        return bytes(noise), alpha

    return rgba.translate(grain.precompensation(alpha)), overlay
