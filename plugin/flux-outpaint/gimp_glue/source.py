"""Which layer to extend, where it is, and how to read its alpha: the GIMP objects.

The decisions made from these (automatic sides, the output area, the canvas growth) are the
core's ``flux_outpaint.framing``.
"""

from __future__ import annotations

from collections.abc import Callable

from flux_outpaint import geometry
from flux_outpaint.errors import InputError
from flux_outpaint.geometry import Rect
from gi.repository import Gimp

from . import pixels


def pick_layer(drawables: list[Gimp.Drawable]) -> tuple[Gimp.Layer, bool]:
    """The layer to extend, and whether its mask (not the layer) was the selected drawable."""
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


def _check_parents_unlocked(layer: Gimp.Layer) -> None:
    """The result goes into the source layer's group: GIMP kills a plug-in that writes into
    a group whose pixels are locked, so refuse before anything is sent (and paid for)."""
    parent = layer.get_parent()
    while parent is not None:
        if parent.get_lock_content():
            raise InputError(
                f"The layer group “{parent.get_name()}” has its pixels locked: "
                "unlock it so the result layer can go in beside the layer"
            )
        parent = parent.get_parent()


def layer_rect(layer: Gimp.Layer) -> Rect:
    _, x, y = layer.get_offsets()
    return Rect(x, y, layer.get_width(), layer.get_height())


def alpha_reader(layer: Gimp.Layer, rect: Rect) -> Callable[[Rect], Rect | None]:
    """``framing.automatic``'s alpha scan for this layer (only called when needed)."""

    def bounds_of(visible: Rect) -> Rect | None:
        if not layer.has_alpha():
            return Rect(0, 0, visible.width, visible.height)
        rgba = pixels.read_rgba(layer, visible.translate(-rect.x, -rect.y))
        return geometry.alpha_bounds(rgba, visible.width, visible.height)

    return bounds_of
