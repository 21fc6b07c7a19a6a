"""The result layer: one undo step, aligned on the original, masked at the seam.

Nothing here talks to the network and nothing before ``apply`` changes the image: the
caller decodes and checks the result first (and may correct its bytes), so a failure up to
that point leaves the image exactly as it was.  Inside ``apply`` a failure is rolled back by
hand (GIMP offers plug-ins no undo call).

The layer covers the placement rectangle.  A result at the canvas's own resolution is
written whole.  A result that must be enlarged (canvases over fal's 4 MP) is enlarged only
where its mask lets it show, ``Placement.shown``: the new band, the seam ramp and a margin
of ``MARGIN`` pixels inside the ramp; the original's interior, which the mask hides, stays
transparent there, so even with the mask disabled the original shows through.  Enlarging
the whole result to a 35 MP canvas cost GIMP 4-5 s; the band alone costs a fraction of a
second (docs/gimp-speed.md).

The mask starts black (0, the original shows exactly) and only the shown rectangles are
written: the band at 255 and the ramp just inside the grown sides (``flux_outpaint.seam``).

Several takes (variations) go into one layer group, ``apply_group``: one masked layer per take,
only the first visible, so the image looks as with one take until the person picks another.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flux_outpaint.framing import Growth, Placement
from flux_outpaint.grain import NONE, Grain
from flux_outpaint.i18n import _
from gi.repository import Gimp

from . import grainfill, pixels, source


def layer_name() -> str:
    """The result layer's (or group's) name, in the person's language."""
    return _("Outpaint")


# Enlarged pixels beyond what the mask shows, inside the ramp: room to widen the seam by
# painting the mask without uncovering an empty layer.
MARGIN = 64
# One take of a group: (layer name, rgba, width, height, grain).
TakePixels = tuple[str, bytes, int, int, Grain]
# The item a placement adds: a layer, or a layer group of takes.
_Item = TypeVar("_Item", bound="Gimp.Layer")


def _layer_type(image: Gimp.Image) -> Gimp.ImageType:
    if image.get_base_type() == Gimp.ImageBaseType.GRAY:
        return Gimp.ImageType.GRAYA_IMAGE
    return Gimp.ImageType.RGBA_IMAGE


def apply(
    image: Gimp.Image,
    above: Gimp.Layer | None,
    rgba: bytes,
    width: int,
    height: int,
    where: Placement,
    name: str | None = None,
    edit_mask_of: Gimp.Layer | None = None,
    flush_displays: bool = True,
    grain: Grain = NONE,
) -> Gimp.Layer:
    """Add the result as a masked layer directly above ``above`` (same parent; None = the
    top of the image); one undo step.  ``grain``: added where the result is enlarged.

    ``edit_mask_of``: a layer whose mask was the selected drawable, selected again after.
    ``flush_displays``: show the change in GIMP's windows now.  A script calling the
    plug-in flushes when it is done; in gimp-console a flush made GIMP render the image's
    whole composite before the call returned (0.07-0.6 s at 16-35 MP), for no window.
    """
    rect = where.rect

    def make() -> Gimp.Layer:
        kind = _layer_type(image)
        return Gimp.Layer.new(
            image, name or layer_name(), rect.width, rect.height, kind, 100.0, Gimp.LayerMode.NORMAL
        )

    def fill(layer: Gimp.Layer) -> None:
        layer.set_offsets(rect.x, rect.y)
        _fill_masked(layer, rgba, width, height, where, grain)

    return _in_one_step(image, above, where, make, fill, edit_mask_of, flush_displays)


def apply_group(
    image: Gimp.Image,
    above: Gimp.Layer | None,
    takes: list[TakePixels],
    where: Placement,
    name: str | None = None,
    edit_mask_of: Gimp.Layer | None = None,
    flush_displays: bool = True,
) -> Gimp.GroupLayer:
    """Add a layer group directly above ``above`` holding one masked layer per take
    (``(layer name, rgba, width, height, grain)``, top to bottom), only the first visible;
    one undo step with any canvas growth.  Returns the group.  Arguments as for ``apply``;
    each take's ``grain`` is added where it is enlarged, as ``apply`` adds a single one's."""
    rect = where.rect

    def fill(group: Gimp.GroupLayer) -> None:
        group.set_expanded(True)  # the takes in view in the Layers dock, to be compared
        kind = _layer_type(image)
        for position, (label, rgba, width, height, grain) in enumerate(takes):
            layer = Gimp.Layer.new(
                image, label, rect.width, rect.height, kind, 100.0, Gimp.LayerMode.NORMAL
            )
            image.insert_layer(layer, group, position)
            layer.set_offsets(rect.x, rect.y)
            # the first take shows; the others wait to be picked with their eye
            layer.set_visible(position == 0)
            _fill_masked(layer, rgba, width, height, where, grain)

    return _in_one_step(
        image,
        above,
        where,
        lambda: Gimp.GroupLayer.new(image, name or layer_name()),
        fill,
        edit_mask_of,
        flush_displays,
    )


def _in_one_step(
    image: Gimp.Image,
    above: Gimp.Layer | None,
    where: Placement,
    make: Callable[[], _Item],
    fill: Callable[[_Item], None],
    edit_mask_of: Gimp.Layer | None,
    flush_displays: bool,
) -> _Item:
    """Grow the canvas if asked, put ``make()`` directly above ``above`` and ``fill`` it, in
    one undo group; on any failure the image is put back as it was.  Returns the new item."""
    old_size = (image.get_width(), image.get_height())
    grown: Growth | None = None
    item: _Item | None = None
    image.undo_group_start()
    try:
        if where.growth is not None:
            g = where.growth
            image.resize(g.width, g.height, g.offset_x, g.offset_y)
            grown = g
        item = make()
        _insert_above(image, item, above)
        if above is not None:
            source.mark_result(item, above)
        fill(item)
        _select(image, item, edit_mask_of)
    except BaseException:
        _roll_back(image, item, grown, old_size)
        raise
    finally:
        image.undo_group_end()
    if flush_displays:
        Gimp.displays_flush()
    return item


def _insert_above(image: Gimp.Image, layer: Gimp.Layer, above: Gimp.Layer | None) -> None:
    """Directly above ``above`` in its parent (None: the top of the image)."""
    if above is None:
        image.insert_layer(layer, None, 0)
    else:
        image.insert_layer(layer, above.get_parent(), image.get_item_position(above))


def _fill_masked(
    layer: Gimp.Layer,
    rgba: bytes,
    width: int,
    height: int,
    where: Placement,
    grain: Grain = NONE,
) -> None:
    fill_layer(layer, rgba, width, height, where, grain)
    add_seam_mask(layer, where)


def fill_layer(
    layer: Gimp.Layer,
    rgba: bytes,
    width: int,
    height: int,
    where: Placement,
    grain: Grain = NONE,
) -> None:
    """The result's pixels: whole at 1:1, else enlarged where the mask shows them, with
    ``grain`` added to the enlarged pixels (``grainfill``)."""
    size = (where.rect.width, where.rect.height)
    if (width, height) == size:
        pixels.write_rgba(layer, rgba, width, height)
        return
    source, overlay = grainfill.enlarging(rgba, width, height, grain)
    pixels_of = pixels.enlarger(source, width, height, size, overlay)
    areas = (
        chunk for area in where.shown(margin=MARGIN) for chunk in area.bands(pixels.CHUNK_PIXELS)
    )
    pixels.write_parts(layer, pixels.RGBA, pixels.in_parallel(pixels_of, areas))


def add_seam_mask(layer: Gimp.Layer, where: Placement) -> None:
    """A black mask (the original shows exactly) with the band and the ramp written in."""
    mask = layer.create_mask(Gimp.AddMaskType.BLACK)
    layer.add_mask(mask)
    x, y = where.rect.x, where.rect.y
    parts = (
        (chunk, where.mask(chunk.translate(x, y)))
        for area in where.shown()
        for chunk in area.bands(pixels.CHUNK_PIXELS * 4)
    )
    pixels.write_parts(mask, pixels.MASK, parts)


def _select(image: Gimp.Image, item: Gimp.Layer, edit_mask_of: Gimp.Layer | None) -> None:
    """The result selected, as GIMP's own filters leave theirs; a source whose mask was being
    edited goes back to editing its mask."""
    image.set_selected_layers([item])
    if edit_mask_of is not None and hasattr(edit_mask_of, "set_edit_mask"):
        edit_mask_of.set_edit_mask(True)


def _roll_back(
    image: Gimp.Image, layer: Gimp.Layer | None, grown: Growth | None, old_size: tuple[int, int]
) -> None:
    """Best effort: a half-placed result must not stay in the image."""
    try:
        if layer is not None and layer.is_valid() and layer.get_image() is not None:
            image.remove_layer(layer)
        if grown is not None:
            image.resize(old_size[0], old_size[1], -grown.offset_x, -grown.offset_y)
    except Exception:  # noqa: BLE001 - the original error is the one to report
        pass
