"""Where the new pixels go on an image, and where the returned picture lands: pure decisions.

Shared by the GIMP plug-in and the CLI; the glue only reads the layer and writes the result.
Coordinates are image (canvas) coordinates unless a name says ``local``.

Automatic sides (a value of ``AUTO``): if the canvas reaches beyond the layer, the expansion
is that canvas margin; else if the layer has transparent margins, it is those margins; else it
is 0 and only the numbers given expand (the canvas then grows to hold the result).  A number
≥ 0 always means "this many new pixels beyond the original pixels on that side".

``Placement`` is the returned image's place on the (possibly grown) image: its rectangle at
full resolution, the original it must not hide, which sides grew and the seam blend.  It is
written into the journal with each request, so a recovered result lands where the first run
put it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import geometry
from .errors import InputError, ResultError
from .geometry import Expansion, Rect, Source
from .planning import Plan
from .seam import MAX_BLEND, mask_bytes

__all__ = [
    "ASPECT_TOLERANCE",
    "AUTO",
    "SIDES",
    "Automatic",
    "Framing",
    "Growth",
    "Placement",
    "automatic",
    "check_size",
    "frame",
    "prefill",
    "requested_expansion",
]

AUTO = -1
SIDES = ("left", "right", "top", "bottom")
# A returned image of the wrong size is accepted only as a uniformly scaled version of the
# requested one, no larger than asked: then scaling it onto the placement is what the plan
# meant anyway.
ASPECT_TOLERANCE = 0.02


@dataclass(frozen=True)
class Automatic:
    """What the image itself says, before the user's numbers."""

    mode: str  # "canvas" | "alpha" | "numbers"
    reference: Rect  # the original pixels, image coordinates
    expansion: Expansion  # the automatic expansion per side

    def describe(self) -> str:
        if self.mode == "canvas":
            return f"from the canvas: {self.expansion.describe()}"
        if self.mode == "alpha":
            return f"from the transparent margins: {self.expansion.describe()}"
        return "the layer fills the canvas: give the pixels to add per side"


@dataclass(frozen=True)
class Growth:
    """The canvas grows to ``width``×``height``, old content moving by the offsets."""

    width: int
    height: int
    offset_x: int
    offset_y: int


@dataclass(frozen=True)
class Framing:
    """The request's output area, placed on the image."""

    automatic: Automatic
    source: Source  # output-area coordinates: what planning works on
    origin: tuple[int, int]  # the output area's top-left, image coordinates AFTER growth
    growth: Growth | None

    @property
    def image_origin(self) -> tuple[int, int]:
        """Where the image's pixel (0, 0) lands on the output area (the CLI composes there)."""
        dx, dy = (self.growth.offset_x, self.growth.offset_y) if self.growth else (0, 0)
        return dx - self.origin[0], dy - self.origin[1]


def automatic(
    canvas_w: int, canvas_h: int, layer: Rect, alpha_bounds_of: Callable[[Rect], Rect | None]
) -> Automatic:
    """``alpha_bounds_of(visible)`` scans the layer's alpha inside ``visible`` (image coords)
    and answers in coordinates local to ``visible``; it is only called when needed."""
    canvas = Rect(0, 0, canvas_w, canvas_h)
    visible = layer.intersect(canvas)
    if visible is None:
        raise InputError("The layer lies entirely outside the canvas: move it onto the canvas")
    if visible != canvas:
        src = geometry.from_canvas(canvas_w, canvas_h, layer)
        return Automatic("canvas", src.reference, src.expansion)
    bounds = alpha_bounds_of(visible)
    if bounds is not None and bounds == Rect(0, 0, visible.width, visible.height):
        return Automatic("numbers", visible, Expansion())
    src = geometry.from_alpha_margins(visible, bounds)  # raises on a fully clear layer
    return Automatic("alpha", src.reference.translate(visible.x, visible.y), src.expansion)


def requested_expansion(auto: Automatic, values: Mapping[str, int]) -> Expansion:
    """Per side: the number given, or the automatic value for ``AUTO``."""
    out = {}
    for side in SIDES:
        value = int(values.get(side, AUTO))
        if value < AUTO:
            raise InputError(f"expand-{side} must be -1 (automatic) or a number of pixels ≥ 0")
        out[side] = getattr(auto.expansion, side) if value == AUTO else value
    return Expansion(**out)


def frame(auto: Automatic, canvas_w: int, canvas_h: int, values: Mapping[str, int]) -> Framing:
    exp = requested_expansion(auto, values)
    ref = auto.reference
    area = Rect(
        ref.x - exp.left, ref.y - exp.top, exp.total_width(ref.width), exp.total_height(ref.height)
    )
    x0, y0 = min(0, area.x), min(0, area.y)
    x1, y1 = max(canvas_w, area.right), max(canvas_h, area.bottom)
    growth = None
    if (x0, y0, x1, y1) != (0, 0, canvas_w, canvas_h):
        growth = Growth(x1 - x0, y1 - y0, -x0, -y0)
    source = Source(Rect(exp.left, exp.top, ref.width, ref.height), area.width, area.height)
    return Framing(auto, source, (area.x - x0, area.y - y0), growth)


def prefill(auto: Automatic, maximum: int) -> dict[str, int]:
    """Dialog values from the current canvas: the automatic numbers where they fit the
    argument's range, else ``AUTO`` so a big canvas margin is still used whole."""
    if auto.mode == "numbers":
        return {}
    return {side: v if (v := getattr(auto.expansion, side)) <= maximum else AUTO for side in SIDES}


@dataclass(frozen=True)
class Placement:
    """Where the returned image goes, all in image coordinates after ``growth``."""

    rect: Rect  # the returned image at full resolution (the result layer)
    reference: Rect  # the original pixels the mask protects
    sides: Expansion  # 0/1 per side: which sides grew (they get the seam ramp)
    seam_blend: int
    growth: Growth | None = None

    @classmethod
    def from_plan(
        cls,
        plan: Plan,
        seam_blend: int,
        origin: tuple[int, int] = (0, 0),
        growth: Growth | None = None,
    ) -> Placement:
        """``origin``: where the plan's output area sits on the image (after ``growth``)."""
        return cls(
            plan.placement.translate(*origin),
            plan.source.reference.translate(*origin),
            plan.source.expansion.sides(),
            seam_blend,
            growth,
        )

    def mask(self, area: Rect | None = None) -> bytes:
        """The seam mask (one byte a pixel, 0 = the original shows) over ``area``, by default
        the whole result."""
        area = self.rect if area is None else area
        local = self.reference.translate(-area.x, -area.y)
        return mask_bytes(area.width, area.height, local, self.sides, self.seam_blend)

    def shown(self, margin: int = 0) -> list[Rect]:
        """Where the mask is not 0, as at most four disjoint rectangles in the result layer's
        own coordinates (0, 0 = ``rect``'s corner): everything but the original's interior.

        ``margin`` moves the interior's edges on the sides that grew that many pixels further
        in, for pixels wanted a little beyond what the mask shows.  The mask is exactly 0
        everywhere outside these rectangles (``shown()`` with no margin).
        """
        width, height = self.rect.width, self.rect.height
        ref = self.reference.translate(-self.rect.x, -self.rect.y)
        blend = max(0, min(int(self.seam_blend), MAX_BLEND))
        s = self.sides

        def cut(grew: int) -> int:
            return blend + max(0, margin) if grew else 0

        x0, x1 = ref.x + cut(s.left), ref.right - cut(s.right)
        y0, y1 = ref.y + cut(s.top), ref.bottom - cut(s.bottom)
        hidden = None
        if x1 > x0 and y1 > y0:
            hidden = Rect(x0, y0, x1 - x0, y1 - y0).intersect(Rect(0, 0, width, height))
        if hidden is None:
            return [Rect(0, 0, width, height)]
        parts = [
            Rect(0, 0, width, hidden.y),
            Rect(0, hidden.bottom, width, height - hidden.bottom),
            Rect(0, hidden.y, hidden.x, hidden.height),
            Rect(hidden.right, hidden.y, width - hidden.right, hidden.height),
        ]
        return [part for part in parts if not part.is_empty]

    def to_json(self) -> dict[str, Any]:
        r, o, s = self.rect, self.reference, self.sides
        return {
            "rect": [r.x, r.y, r.width, r.height],
            "reference": [o.x, o.y, o.width, o.height],
            "sides": [s.left, s.right, s.top, s.bottom],
            "seam_blend": self.seam_blend,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Placement:
        """ValueError unless ``data`` is what ``to_json`` writes (the journal is a file
        anyone can edit)."""

        def ints(name: str, count: int) -> list[int]:
            value = data.get(name) if isinstance(data, Mapping) else None
            if not (
                isinstance(value, list)
                and len(value) == count
                and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            ):
                raise ValueError(f"placement {name!r} is not {count} integers")
            return value

        rect, reference, sides = ints("rect", 4), ints("reference", 4), ints("sides", 4)
        blend = data.get("seam_blend")
        if not isinstance(blend, int) or isinstance(blend, bool) or blend < 0:
            raise ValueError("placement 'seam_blend' is not an integer")
        return cls(Rect(*rect), Rect(*reference), Expansion(*sides), blend)


def check_size(got: tuple[int, int], want: tuple[int, int]) -> None:
    """Accept the requested size or a uniformly scaled-down one; refuse anything else.

    Larger than asked is refused beyond the aspect tolerance: the size comes from the
    image's header, before any pixel is decoded, and a header may lie to make a decoder
    allocate gigabytes.
    """
    if got == want:
        return
    (gw, gh), (ww, wh) = got, want
    if gw > 0 and gh > 0 and ww > 0 and wh > 0:
        ratio = (gw / gh) / (ww / wh)
        larger = max(gw / ww, gh / wh) > 1.0 + ASPECT_TOLERANCE
        if abs(ratio - 1.0) <= ASPECT_TOLERANCE and not larger:
            return
    raise ResultError(f"fal returned {gw}×{gh} instead of {ww}×{wh}; the image was not changed")
