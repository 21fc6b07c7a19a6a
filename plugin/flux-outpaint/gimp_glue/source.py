"""Which layer to extend, where it is, and how to read its alpha: the GIMP objects.

The decisions made from these (automatic sides, the output area, the canvas growth) are the
core's ``flux_outpaint.framing``.
"""

from __future__ import annotations

from collections.abc import Callable

from flux_outpaint import geometry
from flux_outpaint.errors import InputError
from flux_outpaint.geometry import Rect
from flux_outpaint.i18n import _
from gi.repository import Gimp

from . import pixels

# On a result (layer or group of takes): the id of the layer it was made from.
SOURCE_PARASITE = "flux-outpaint-source"


def mark_result(item: Gimp.Layer, source_layer: Gimp.Layer) -> None:
    """Remember on ``item`` which layer it extends (see ``pick_layer``)."""
    data = list(str(source_layer.get_id()).encode())
    item.attach_parasite(Gimp.Parasite.new(SOURCE_PARASITE, 0, data))


def _source_of(drawable: Gimp.Drawable) -> Gimp.Layer | None:
    """The layer a selected result was made from, when running again on that result could only
    mean "again, from its source": a group of takes (a group cannot be extended) or a result
    as large as the canvas (nothing left to extend).  None otherwise."""
    parasite = drawable.get_parasite(SOURCE_PARASITE)
    if parasite is None:
        return None
    image = drawable.get_image()
    covers = drawable.get_offsets()[1:] == (0, 0) and (
        drawable.get_width(),
        drawable.get_height(),
    ) == (image.get_width(), image.get_height())
    if not (drawable.is_group() or covers):
        return None
    try:
        layer = Gimp.Item.get_by_id(int(bytes(parasite.get_data()).decode("ascii")))
    except (ValueError, UnicodeDecodeError):
        return None
    if layer is None or not layer.is_valid() or not layer.is_layer() or layer.is_group():
        return None
    return layer if layer.get_image().get_id() == image.get_id() else None


def pick_layer(drawables: list[Gimp.Drawable]) -> tuple[Gimp.Layer, bool]:
    """The layer to extend, and whether its mask (not the layer) was the selected drawable.

    The result of an earlier run is selected after it (as GIMP's filters leave theirs), so
    Repeat (Ctrl+F) finds it selected: then the layer it was made from is extended again."""
    if not drawables:
        raise InputError(_("Select a layer to outpaint"))
    if len(drawables) > 1:
        raise InputError(_("Several layers are selected: select only the layer to outpaint"))
    drawable = drawables[0]
    if drawable.is_layer_mask():
        layer = Gimp.Layer.from_mask(drawable)
        _check_parents_unlocked(layer)
        return layer, True
    if not drawable.is_layer():
        raise InputError(_("Select a layer to outpaint (channels cannot be outpainted)"))
    drawable = _source_of(drawable) or drawable
    if drawable.is_group():
        raise InputError(
            _("“{name}” is a layer group: select one layer inside it").format(
                name=drawable.get_name()
            )
        )
    _check_parents_unlocked(drawable)
    return drawable, False


def _check_parents_unlocked(layer: Gimp.Layer) -> None:
    """The result goes into the source layer's group: GIMP kills a plug-in that writes into
    a group whose pixels are locked, so refuse before anything is sent (and paid for)."""
    parent = layer.get_parent()
    while parent is not None:
        if parent.get_lock_content():
            raise InputError(
                _(
                    "The layer group “{name}” has its pixels locked: unlock it so the result "
                    "layer can go in beside the layer"
                ).format(name=parent.get_name())
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
