"""Which layer, which of its pixels, and where the new pixels go.

Everything here is decided before anything is sent or changed.  Coordinates are image
(canvas) coordinates unless a name says ``local``.

Automatic sides (an argument of -1): if the canvas reaches beyond the layer, the expansion is
that canvas margin; else if the layer has transparent margins, it is those margins; else it
is 0 and only the numbers given expand (the canvas then grows to hold the result).  A number
>= 0 always means "this many new pixels beyond the original pixels on that side".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from outpaint import geometry
from outpaint.errors import InputError
from outpaint.geometry import Expansion, Rect, Source

AUTO = -1
SIDES = ("left", "right", "top", "bottom")


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
    """Arguments of ``image.resize``: the canvas grows before the result goes in."""

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

    def to_image(self, rect: Rect) -> Rect:
        return rect.translate(*self.origin)


def automatic(canvas_w: int, canvas_h: int, layer: Rect,
              alpha_bounds_of: Callable[[Rect], Rect | None]) -> Automatic:
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


def requested_expansion(auto: Automatic, values: dict[str, int]) -> Expansion:
    """Per side: the number given, or the automatic value for -1."""
    out = {}
    for side in SIDES:
        value = int(values.get(side, AUTO))
        if value < AUTO:
            raise InputError(f"expand-{side} must be -1 (automatic) or a number of pixels ≥ 0")
        out[side] = getattr(auto.expansion, side) if value == AUTO else value
    return Expansion(**out)


def frame(auto: Automatic, canvas_w: int, canvas_h: int, values: dict[str, int]) -> Framing:
    exp = requested_expansion(auto, values)
    ref = auto.reference
    area = Rect(ref.x - exp.left, ref.y - exp.top, exp.total_width(ref.width),
                exp.total_height(ref.height))
    x0, y0 = min(0, area.x), min(0, area.y)
    x1, y1 = max(canvas_w, area.right), max(canvas_h, area.bottom)
    growth = None
    if (x0, y0, x1, y1) != (0, 0, canvas_w, canvas_h):
        growth = Growth(x1 - x0, y1 - y0, -x0, -y0)
    source = Source(Rect(exp.left, exp.top, ref.width, ref.height), area.width, area.height)
    return Framing(auto, source, (area.x - x0, area.y - y0), growth)


def prefill(auto: Automatic, maximum: int) -> dict[str, int]:
    """Dialog values from the current canvas: the automatic numbers where they fit the
    argument's range, else -1 (automatic) so a big canvas margin is still used whole."""
    if auto.mode == "numbers":
        return {}
    return {side: v if (v := getattr(auto.expansion, side)) <= maximum else AUTO
            for side in SIDES}


# -- GIMP side: the objects, not the decisions ------------------------------------------

def pick_layer(drawables) -> tuple[object, bool]:
    """The layer to extend, and whether its mask (not the layer) was the selected drawable."""
    from gi.repository import Gimp

    if not drawables:
        raise InputError("Select a layer to outpaint")
    if len(drawables) > 1:
        raise InputError("Several layers are selected: select only the layer to outpaint")
    drawable = drawables[0]
    if drawable.is_layer_mask():
        layer = Gimp.Layer.from_mask(drawable)
        _check_parents_unlocked(layer)
        return layer, True
    if not drawable.is_layer():
        raise InputError("Select a layer to outpaint (channels cannot be outpainted)")
    if drawable.is_group():
        raise InputError(f"“{drawable.get_name()}” is a layer group: select one layer inside it")
    _check_parents_unlocked(drawable)
    return drawable, False


def _check_parents_unlocked(layer) -> None:
    """The result goes into the source layer's group: GIMP kills a plug-in that writes into
    a group whose pixels are locked, so refuse before anything is sent (and paid for)."""
    parent = layer.get_parent()
    while parent is not None:
        if parent.get_lock_content():
            raise InputError(f"The layer group “{parent.get_name()}” has its pixels locked: "
                             "unlock it so the result layer can go in beside the layer")
        parent = parent.get_parent()


def layer_rect(layer) -> Rect:
    _, x, y = layer.get_offsets()
    return Rect(x, y, layer.get_width(), layer.get_height())
