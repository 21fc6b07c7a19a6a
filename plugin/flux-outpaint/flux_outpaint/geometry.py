"""Where the new pixels go: value types and the ways an expansion is decided.

Coordinates.  A ``Source`` describes the *output area* (the canvas fal will return, at full
resolution) and, inside it, the ``reference``: the original pixels that are sent.  Its
coordinates are relative to the output area's top-left corner; the caller knows where that
corner sits in its own world (GIMP: the image canvas; CLI: the new file).

A layer that sticks out of the canvas is cropped to the canvas locally: only the part inside
the canvas is sent, so fal always receives a reference that its expanded canvas fully
contains and ``auto_crop`` is never needed for our own plans.  Nothing is lost in GIMP: the
source layer keeps its off-canvas pixels, the result layer only covers the canvas.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError
from .i18n import _

__all__ = [
    "ANCHORS",
    "Expansion",
    "Rect",
    "Source",
    "alpha_bounds",
    "from_alpha_margins",
    "from_aspect",
    "from_canvas",
    "from_numbers",
    "from_target_size",
    "mask_bounds",
]


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def bottom(self) -> int:
        return self.y + self.height

    @property
    def is_empty(self) -> bool:
        return self.width <= 0 or self.height <= 0

    def intersect(self, other: Rect) -> Rect | None:
        x0, y0 = max(self.x, other.x), max(self.y, other.y)
        x1, y1 = min(self.right, other.right), min(self.bottom, other.bottom)
        if x1 <= x0 or y1 <= y0:
            return None
        return Rect(x0, y0, x1 - x0, y1 - y0)

    def translate(self, dx: int, dy: int) -> Rect:
        return Rect(self.x + dx, self.y + dy, self.width, self.height)

    def union(self, other: Rect) -> Rect:
        """The smallest rectangle holding both."""
        x0, y0 = min(self.x, other.x), min(self.y, other.y)
        return Rect(x0, y0, max(self.right, other.right) - x0, max(self.bottom, other.bottom) - y0)

    def bands(self, max_pixels: int) -> list[Rect]:
        """This rectangle cut into bands of whole rows, each of at most about ``max_pixels``
        pixels (at least one row): how big images are moved a piece at a time."""
        rows = max(1, max_pixels // max(1, self.width))
        return [
            Rect(self.x, y, self.width, min(rows, self.bottom - y))
            for y in range(self.y, self.bottom, rows)
        ]


@dataclass(frozen=True)
class Expansion:
    left: int = 0
    right: int = 0
    top: int = 0
    bottom: int = 0

    def __post_init__(self) -> None:
        for name in ("left", "right", "top", "bottom"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InputError(f"Expansion {name} must be a whole number ≥ 0, got {value!r}")

    @property
    def is_zero(self) -> bool:
        return not (self.left or self.right or self.top or self.bottom)

    @property
    def largest(self) -> int:
        return max(self.left, self.right, self.top, self.bottom)

    def total_width(self, width: int) -> int:
        return width + self.left + self.right

    def total_height(self, height: int) -> int:
        return height + self.top + self.bottom

    def sides(self) -> Expansion:
        """1 on each side that grows, 0 elsewhere (the seam mask needs only which sides)."""
        return Expansion(
            int(self.left > 0), int(self.right > 0), int(self.top > 0), int(self.bottom > 0)
        )

    def as_request(self) -> dict[str, int]:
        return {
            "expand_left": self.left,
            "expand_right": self.right,
            "expand_top": self.top,
            "expand_bottom": self.bottom,
        }

    def describe(self) -> str:
        parts = [
            text.format(pixels=v)
            for text, v in (
                (_("+{pixels} left"), self.left),
                (_("+{pixels} right"), self.right),
                (_("+{pixels} top"), self.top),
                (_("+{pixels} bottom"), self.bottom),
            )
            if v
        ]
        return ", ".join(parts) if parts else _("no expansion")


@dataclass(frozen=True)
class Source:
    """The reference inside the output area; ``expansion`` is derived, never inconsistent."""

    reference: Rect
    canvas_width: int
    canvas_height: int

    def __post_init__(self) -> None:
        ref = self.reference
        if ref.is_empty:
            raise InputError("The layer has no pixels to extend")
        if (
            ref.x < 0
            or ref.y < 0
            or ref.right > self.canvas_width
            or ref.bottom > self.canvas_height
        ):
            raise InputError("The reference lies outside the output area")

    @property
    def expansion(self) -> Expansion:
        ref = self.reference
        return Expansion(
            left=ref.x,
            right=self.canvas_width - ref.right,
            top=ref.y,
            bottom=self.canvas_height - ref.bottom,
        )


def from_canvas(canvas_w: int, canvas_h: int, layer: Rect) -> Source:
    """Expansion = the canvas around the layer; the layer's off-canvas part is cropped."""
    if canvas_w <= 0 or canvas_h <= 0:
        raise InputError("The canvas is empty")
    inside = layer.intersect(Rect(0, 0, canvas_w, canvas_h))
    if inside is None:
        raise InputError("The layer lies entirely outside the canvas")
    return Source(inside, canvas_w, canvas_h)


def alpha_bounds(rgba: bytes, width: int, height: int, threshold: int = 0) -> Rect | None:
    """Bounding box of pixels whose alpha exceeds ``threshold``; None when all are clear."""
    if len(rgba) != width * height * 4:
        raise InputError(f"Expected {width}×{height} RGBA pixels, got {len(rgba)} bytes")
    return mask_bounds(rgba[3::4], width, height, threshold)


def mask_bounds(mask: bytes, width: int, height: int, threshold: int = 0) -> Rect | None:
    """Bounding box of the values of a one-byte-per-pixel mask (an alpha channel) that exceed
    ``threshold``; None when none does.

    Pure Python but row-wise in C (bytes.translate/strip), so a 16 MP layer takes well under
    a second inside GIMP's numpy-less Python.
    """
    if len(mask) != width * height:
        raise InputError(f"Expected {width}×{height} mask values, got {len(mask)} bytes")
    if threshold > 0:
        mask = mask.translate(bytes(0 if v <= threshold else 255 for v in range(256)))
    x0, x1, y0, y1 = width, 0, None, 0
    for y in range(height):
        row = mask[y * width : (y + 1) * width]
        left_trim = len(row) - len(row.lstrip(b"\x00"))
        if left_trim == width:
            continue
        right_trim = len(row) - len(row.rstrip(b"\x00"))
        if y0 is None:
            y0 = y
        y1 = y + 1
        x0 = min(x0, left_trim)
        x1 = max(x1, width - right_trim)
    if y0 is None:
        return None
    return Rect(x0, y0, x1 - x0, y1 - y0)


def from_alpha_margins(layer: Rect, bounds: Rect | None) -> Source:
    """The layer is the output area; its opaque part (``bounds``, layer-local) is the reference."""
    if bounds is None:
        raise InputError("The layer is fully transparent: there is nothing to extend")
    if bounds == Rect(0, 0, layer.width, layer.height):
        raise InputError(
            "Nothing to expand: the layer has no transparent margins and fills the canvas"
        )
    return Source(bounds, layer.width, layer.height)


def from_numbers(layer_w: int, layer_h: int, exp: Expansion) -> Source:
    if layer_w <= 0 or layer_h <= 0:
        raise InputError("The image is empty")
    return Source(
        Rect(exp.left, exp.top, layer_w, layer_h),
        exp.total_width(layer_w),
        exp.total_height(layer_h),
    )


# Anchor = where the original sits in the larger canvas.
ANCHORS = {
    "top-left": (0.0, 0.0),
    "top": (0.5, 0.0),
    "top-right": (1.0, 0.0),
    "left": (0.0, 0.5),
    "center": (0.5, 0.5),
    "right": (1.0, 0.5),
    "bottom-left": (0.0, 1.0),
    "bottom": (0.5, 1.0),
    "bottom-right": (1.0, 1.0),
}


def _anchored(layer_w: int, layer_h: int, target_w: int, target_h: int, anchor: str) -> Source:
    if anchor not in ANCHORS:
        raise InputError(f"Unknown anchor {anchor!r}; use one of {', '.join(ANCHORS)}")
    fx, fy = ANCHORS[anchor]
    extra_w, extra_h = target_w - layer_w, target_h - layer_h
    # The odd pixel of a centred split goes right/bottom (floor for left/top).
    left, top = int(extra_w * fx), int(extra_h * fy)
    return from_numbers(layer_w, layer_h, Expansion(left, extra_w - left, top, extra_h - top))


def from_target_size(
    layer_w: int, layer_h: int, target_w: int, target_h: int, anchor: str = "center"
) -> Source:
    if target_w < layer_w or target_h < layer_h:
        raise InputError(
            f"Target {target_w}×{target_h} is smaller than the image {layer_w}×{layer_h}"
        )
    return _anchored(layer_w, layer_h, target_w, target_h, anchor)


def from_aspect(
    layer_w: int, layer_h: int, aspect_w: int, aspect_h: int, anchor: str = "center"
) -> Source:
    """The smallest canvas of the given aspect ratio that contains the image.

    An image within a pixel of the ratio already has it: the row or column that rounding
    alone would add (451×300 at 3:2 asks for 300.67 rows) is not grown, since it would be a
    paid request for one line of pixels."""
    if aspect_w <= 0 or aspect_h <= 0:
        raise InputError("Aspect ratio sides must be positive, e.g. 16:9")
    if layer_w * aspect_h < layer_h * aspect_w:  # too narrow: widen
        target_w, target_h = -(-layer_h * aspect_w // aspect_h), layer_h
        if layer_h * aspect_w - layer_w * aspect_h < aspect_h:  # short by under a column
            target_w = layer_w
    else:
        target_w, target_h = layer_w, -(-layer_w * aspect_h // aspect_w)
        if layer_w * aspect_h - layer_h * aspect_w < aspect_w:  # short by under a row
            target_h = layer_h
    return _anchored(layer_w, layer_h, target_w, target_h, anchor)
