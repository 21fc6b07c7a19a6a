"""Batch of test_plugin_bad_inputs.py: awkward image states, each built, run and measured.

``params``: ``key`` (the key the server accepts, put back after each state), ``switch`` (see
switching.ServerSwitch) and ``states``: one dict per state with ``name``, ``build`` (a
builder below and its arguments: ``["plain", 400, 300, ...]``), ``args``, ``key`` (None: no
key file) and ``stop_server``.
"""

from __future__ import annotations

import gi
from prelude import (
    describe,
    make_image,
    outpaint,
    pattern,
    read,
    snapshot,
    use_plugin_modules,
    write,
)
from reporting import report
from switching import ServerSwitch

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp  # noqa: E402


def set_key(value):
    from flux_outpaint import settings  # the plug-in's own idea of where the key file is

    path = settings.key_path()
    if value is None:
        if path.exists():
            path.unlink()
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n")


def plain(cw, ch, lx, ly, lw, lh, base="rgb", precision="u8"):
    img, layer = make_image(cw, ch, lx, ly, lw, lh, base, precision)
    return img, [layer], layer


def indexed():
    img, layer = make_image(400, 300, 50, 40, 300, 200)
    img.convert_indexed(
        Gimp.ConvertDitherType.NONE, Gimp.ConvertPaletteType.GENERATE, 256, False, False, ""
    )
    return img, [layer], layer


def group():
    img, layer = make_image(400, 300, 50, 40, 300, 200)
    grp = Gimp.GroupLayer.new(img, "Group")
    img.insert_layer(grp, None, 0)
    img.reorder_item(layer, grp, 0)
    img.set_selected_layers([grp])
    return img, [grp], None


def text():
    img, _ = make_image(400, 200, 0, 0, 400, 200, name="Background")
    font = Gimp.context_get_font()
    layer = Gimp.TextLayer.new(img, "Outpaint me", font, 48.0, Gimp.Unit.pixel())
    img.insert_layer(layer, None, 0)
    layer.set_name("Text")
    layer.set_offsets(20, 20)
    return img, [layer], layer


def hidden():
    img, layers, layer = plain(400, 300, 50, 40, 300, 200)
    layer.set_visible(False)
    return img, layers, layer


def locked_pixels():
    img, layers, layer = plain(400, 300, 50, 40, 300, 200)
    layer.set_lock_content(True)
    layer.set_lock_alpha(True)
    return img, layers, layer


def locked_position():
    img, layers, layer = plain(300, 200, 0, 0, 300, 200)
    layer.set_lock_position(True)
    return img, layers, layer


def locked_group():
    img, layers, layer = plain(300, 200, 0, 0, 300, 200)
    grp = Gimp.GroupLayer.new(img, "Group")
    img.insert_layer(grp, None, 0)
    img.reorder_item(layer, grp, 0)
    grp.set_lock_content(True)
    img.set_selected_layers([layer])
    return img, layers, layer


def mask_selected():
    img, layers, layer = plain(400, 300, 50, 40, 300, 200)
    mask = layer.create_mask(Gimp.AddMaskType.WHITE)
    layer.add_mask(mask)
    return img, [mask], layer


def with_mask():
    img, layers, layer = plain(400, 300, 50, 40, 300, 200)
    layer.add_mask(layer.create_mask(Gimp.AddMaskType.BLACK))
    layer.set_edit_mask(False)
    return img, layers, layer


def several():
    img, layers, layer = plain(400, 300, 50, 40, 300, 200)
    other = Gimp.Layer.new(
        img, "Other", 40, 40, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL
    )
    img.insert_layer(other, None, 0)
    img.set_selected_layers([layer, other])
    return img, [layer, other], None


def nothing_selected():
    img, layers, layer = plain(400, 300, 50, 40, 300, 200)
    return img, [], None


def background():
    img = Gimp.Image.new(300, 200, Gimp.ImageBaseType.RGB)
    layer = Gimp.Layer.new(
        img, "Background", 300, 200, Gimp.ImageType.RGB_IMAGE, 100.0, Gimp.LayerMode.NORMAL
    )
    img.insert_layer(layer, None, 0)
    write(layer, pattern(300, 200), 300, 200)
    return img, [layer], layer


def floating():
    img, layers, layer = plain(200, 150, 20, 20, 160, 110)
    img.select_rectangle(Gimp.ChannelOps.REPLACE, 30, 30, 40, 40)
    Gimp.edit_copy([layer])
    Gimp.edit_paste(layer, False)
    Gimp.Selection.none(img)
    piece = img.get_floating_sel()
    piece.set_name("Floating")
    return img, [piece], piece


def channel():
    img, layers, layer = plain(400, 300, 50, 40, 300, 200)
    chan = Gimp.Channel.new(img, "Channel", 400, 300, 50.0, Gegl.Color.new("red"))
    img.insert_channel(chan, None, 0)
    return img, [chan], None


def selection():
    img, layers, layer = plain(400, 300, 50, 40, 300, 200)
    img.select_rectangle(Gimp.ChannelOps.REPLACE, 60, 60, 100, 80)
    return img, [img.get_selection()], None


def transparent():
    img = Gimp.Image.new(300, 200, Gimp.ImageBaseType.RGB)
    layer = Gimp.Layer.new(
        img, "Source", 300, 200, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL
    )
    img.insert_layer(layer, None, 0)
    return img, [layer], layer


BUILDERS = {
    f.__name__: f
    for f in (
        plain,
        indexed,
        group,
        text,
        hidden,
        locked_pixels,
        locked_position,
        locked_group,
        mask_selected,
        with_mask,
        several,
        nothing_selected,
        background,
        floating,
        channel,
        selection,
        transparent,
    )
}


def flags(layer):
    return {
        "visible": layer.get_visible(),
        "lock_content": layer.get_lock_content(),
        "lock_position": layer.get_lock_position(),
        "text": layer.is_text_layer(),
        "floating": layer.is_floating_sel(),
        "edit_mask": layer.get_edit_mask(),
    }


def without_offsets(layers):
    return [entry[:1] + entry[3:] for entry in layers]


def case(switch_server, server_key, name, built, args=None, key=None, stop_server=False):
    img, drawables, src = built
    switch_server(name, stop=stop_server)  # a server of its own: its submits are this case's
    set_key(key)
    img.clean_all()
    before = snapshot(img)
    src_flags = flags(src) if src is not None else None
    info = {"undo_enabled": img.undo_is_enabled()}
    r = outpaint(img, drawables, **(args or {}))
    after = snapshot(img)
    info.update(
        ok=r["ok"],
        status=r["status"],
        message=r["message"],
        dirty=bool(img.is_dirty()),
        canvas=[img.get_width(), img.get_height()],
    )
    set_key(server_key)
    if not r["ok"]:
        info.update(same=after == before, layers=[entry[0] for entry in after["layers"]])
        report(**{name: info})
        img.delete()
        return
    new = r["layer"]
    parent = new.get_parent()
    siblings = parent.get_children() if parent is not None else img.get_layers()
    kept = [entry for entry in after["layers"] if entry[0] != new.get_name()]
    info.update(
        new=describe(new, img),
        new_visible=new.get_visible(),
        stack=[x.get_name() for x in siblings],
        kept=without_offsets(kept) == without_offsets(before["layers"]),
        selected=after["selected"],
        src=describe(src, img),
        src_flags_kept=flags(src) == src_flags,
    )
    nx, ny, nw, nh = (info["new"][k] for k in ("x", "y", "w", "h"))
    _, sx, sy = src.get_offsets()
    mask = read(new.get_mask(), fmt="Y u8")
    points = {
        "top_left": (nx, ny),
        "top_right": (nx + nw - 1, ny),
        "bottom_left": (nx, ny + nh - 1),
        "bottom_right": (nx + nw - 1, ny + nh - 1),
        "source_centre": (sx + src.get_width() // 2, sy + src.get_height() // 2),
    }
    info["mask"] = {k: [x, y, mask[(y - ny) * nw + (x - nx)]] for k, (x, y) in points.items()}
    report(**{name: info})
    img.delete()


def main(params):
    use_plugin_modules()
    switch_server = ServerSwitch(params["session_dir"], params["switch"])
    for state in params["states"]:
        builder, *build_args = state["build"]
        built = BUILDERS[builder](*build_args)
        case(
            switch_server,
            params["key"],
            state["name"],
            built,
            state["args"],
            state["key"],
            state["stop_server"],
        )
