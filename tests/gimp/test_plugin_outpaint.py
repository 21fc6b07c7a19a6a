"""The plug-in end to end in real GIMP 3.0 and 3.2, against the local fal server.

One GIMP start per version runs every placement case (a start costs seconds, a plug-in call
~0.1 s); each test below then checks one case's report.  Expectations are written out here,
not computed by the glue: canvas, layer rectangle, reference, expanded sides, mask profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from outpaint.geometry import Rect, Source
from outpaint.planning import make_plan

from .sandbox import GimpSession
from .test_plugin_helpers import (
    KEY,
    PRELUDE,
    expected_line,
    files_containing,
    local_server,
    one_line,
    rle,
    run,
    server_env,
    words,
)

BLEND = 16

CASE_CODE = r"""
def case(name, canvas, layer_rect, args=None, base="rgb", precision="u8", box=None,
         group=False, use_mask=False, inner=None, line_y=None, line_x=None, recover=False):
    cw, ch = canvas
    lx, ly, lw, lh = layer_rect
    img, layer = make_image(cw, ch, lx, ly, lw, lh, base, precision, box)
    if group:
        grp = Gimp.GroupLayer.new(img, "Group")
        img.insert_layer(grp, None, 0)
        img.reorder_item(layer, grp, 0)
        above = Gimp.Layer.new(img, "Above", 8, 8, BASES[base][1], 100.0,
                               Gimp.LayerMode.NORMAL)
        img.insert_layer(above, grp, 0)
    drawable = layer
    if use_mask:
        mask = layer.create_mask(Gimp.AddMaskType.WHITE)
        layer.add_mask(mask)
        drawable = mask
    img.set_selected_layers([layer])
    before = snapshot(img)
    src_pixels = read(layer)
    info = {"position_before": img.get_item_position(layer),
            "precision": img.get_precision().value_nick}
    r = outpaint(img, [drawable], **(args or {}))
    info.update(ok=r["ok"], status=r["status"], message=r["message"], seconds=r["seconds"])
    if not r["ok"]:
        info["unchanged"] = snapshot(img) == before
        report(**{name: info})
        img.delete()
        return
    new = r["layer"]
    _, sx, sy = layer.get_offsets()
    info.update(new=describe(new, img), src=describe(layer, img), src_offsets=[sx, sy],
                canvas=[img.get_width(), img.get_height()], layers=len(all_layers(img)),
                src_unchanged=read(layer) == src_pixels,
                selected=[x.get_name() for x in img.get_selected_layers()],
                src_has_mask=layer.get_mask() is not None)
    mask = read(new.get_mask(), fmt="Y u8")
    nw = new.get_width()
    if line_y is not None:
        info["mask_row"] = rle(list(mask[line_y * nw:(line_y + 1) * nw]))
    if line_x is not None:
        info["mask_col"] = rle(list(mask[line_x::nw]))
    comp = composite(img)
    info["corner_alpha"] = comp[3]
    if inner is not None:
        ix, iy, iw, ih = inner
        src_inner = region(src_pixels, lw, (ix - sx, iy - sy, iw, ih))
        info["exact"] = region(comp, img.get_width(), inner) == src_inner
        # fal_local returns the reference itself there: what was sent, as GIMP got it back
        # (mean RGB difference; q95 JPEG of this noisy pattern costs about 13 in GIMP 3.0)
        _, nx, ny = new.get_offsets()
        got = read(new, ix - nx, iy - ny, iw, ih)
        # an enlarged result has pixels only near the seam (the mask hides the rest)
        picks = [i for i in range(0, len(got), 4 * max(1, len(got) // 4 // 20000))
                 if got[i + 3] == 255]
        info["sent_picks"] = len(picks)
        info["sent_diff"] = sum(abs(got[i + c] - src_inner[i + c]) for i in picks
                                for c in range(3)) / (3 * max(1, len(picks)))
    if recover:
        again = outpaint(img, [layer], proc="plug-in-flux-outpaint-recover")
        info["recover"] = {k: again[k] for k in ("ok", "status", "message")}
        if again["ok"]:
            back = again["layer"]
            info["recover"].update(
                describe=describe(back, img), same_pixels=read(back) == read(new),
                same_mask=read(back.get_mask(), fmt=None) == read(new.get_mask(), fmt=None))
        # without the cached file, recover fetches the result from fal again by its id
        import glob, os
        cached = glob.glob(os.path.expanduser("~/.local/share/flux-outpaint/results/*"))
        for path in cached:
            os.remove(path)
        fetched = outpaint(img, [layer], proc="plug-in-flux-outpaint-recover")
        info["refetch"] = {"cached_files": len(cached), "ok": fetched["ok"],
                           "message": fetched["message"]}
        if fetched["ok"]:
            info["refetch"]["same_pixels"] = read(fetched["layer"]) == read(new)
    report(**{name: info})
    img.delete()
"""


@dataclass(frozen=True)
class Case:
    name: str
    canvas: tuple[int, int]
    layer: tuple[int, int, int, int]
    # expectations, image coordinates after the run
    out_canvas: tuple[int, int]
    reference: tuple[int, int, int, int]
    sides: tuple[int, int, int, int]  # left, right, top, bottom grew
    new_rect: tuple[int, int, int, int] | None = None  # None: the whole output canvas
    args: dict = field(default_factory=dict)
    base: str = "rgb"
    precision: str = "u8"
    box: tuple[int, int, int, int] | None = None
    group: bool = False
    use_mask: bool = False
    blend: int = BLEND
    recover: bool = False

    @property
    def rect(self) -> tuple[int, int, int, int]:
        return self.new_rect or (0, 0, *self.out_canvas)

    def inner(self) -> tuple[int, int, int, int]:
        """The reference minus the seam band on the sides that grew."""
        x, y, w, h = self.reference
        left, right, top, bottom = (self.blend * s for s in self.sides)
        return (x + left, y + top, w - left - right, h - top - bottom)

    def line(self) -> tuple[int, int]:
        """Mask row and column (layer-local) through the reference's centre."""
        x, y, w, h = self.reference
        return y + h // 2 - self.rect[1], x + w // 2 - self.rect[0]

    def call(self) -> str:
        row, col = self.line()
        args = {**self.args, "seam_blend": self.blend}
        return (
            f"case({self.name!r}, {self.canvas!r}, {self.layer!r}, {args!r}, "
            f"{self.base!r}, {self.precision!r}, {self.box!r}, {self.group!r}, "
            f"{self.use_mask!r}, {self.inner()!r}, {row}, {col}, {self.recover!r})"
        )


def _downscaled_rect() -> tuple[int, int, int, int]:
    plan = make_plan(Source(Rect(300, 200, 2000, 1400), 2600, 1800))
    assert plan.downscaled
    p = plan.placement
    return (p.x, p.y, p.width, p.height)


ALL = (1, 1, 1, 1)
CASES = [
    Case(
        "all_sides",
        (800, 560),
        (100, 80, 600, 400),
        (800, 560),
        (100, 80, 600, 400),
        ALL,
        recover=True,
    ),
    Case("one_side", (700, 400), (0, 0, 600, 400), (700, 400), (0, 0, 600, 400), (0, 1, 0, 0)),
    Case("off_canvas", (700, 400), (-50, 0, 600, 400), (700, 400), (0, 0, 550, 400), (0, 1, 0, 0)),
    Case(
        "alpha_margins",
        (600, 400),
        (0, 0, 600, 400),
        (600, 400),
        (100, 50, 400, 300),
        ALL,
        box=(100, 50, 400, 300),
    ),
    Case(
        "numbers_grow",
        (500, 300),
        (0, 0, 500, 300),
        (564, 332),
        (64, 32, 500, 300),
        (1, 0, 1, 0),
        args={"expand_left": 64, "expand_top": 32},
    ),
    Case(
        "hard_edge",
        (700, 400),
        (50, 0, 600, 400),
        (700, 400),
        (50, 0, 600, 400),
        (1, 1, 0, 0),
        blend=0,
    ),
    Case("gray", (400, 300), (50, 40, 300, 200), (400, 300), (50, 40, 300, 200), ALL, base="gray"),
    Case(
        "rgb16",
        (400, 300),
        (50, 40, 300, 200),
        (400, 300),
        (50, 40, 300, 200),
        ALL,
        precision="u16",
    ),
    Case(
        "float",
        (400, 300),
        (50, 40, 300, 200),
        (400, 300),
        (50, 40, 300, 200),
        ALL,
        precision="float",
    ),
    Case(
        "in_group", (400, 300), (50, 40, 300, 200), (400, 300), (50, 40, 300, 200), ALL, group=True
    ),
    Case(
        "mask_drawable",
        (400, 300),
        (50, 40, 300, 200),
        (400, 300),
        (50, 40, 300, 200),
        ALL,
        use_mask=True,
    ),
    Case(
        "downscale",
        (2600, 1800),
        (300, 200, 2000, 1400),
        (2600, 1800),
        (300, 200, 2000, 1400),
        ALL,
        new_rect=_downscaled_rect(),
    ),
]
REFUSALS = r"""
img, layer = make_image(300, 200, 0, 0, 300, 200)
second = Gimp.Layer.new(img, "Second", 300, 200, Gimp.ImageType.RGBA_IMAGE, 100.0,
                        Gimp.LayerMode.NORMAL)
img.insert_layer(second, None, 0)
grp = Gimp.GroupLayer.new(img, "Group")
img.insert_layer(grp, None, 0)
before = snapshot(img)
for name, drawables in (("nothing", [layer]), ("several", [layer, second]), ("group", [grp]),
                        ("none", [])):
    r = outpaint(img, drawables)
    report(**{"refuse_" + name: {"ok": r["ok"], "status": r["status"],
                                 "message": r["message"]}})
report(refusals_unchanged=snapshot(img) == before)
img.delete()

# with-last-values (none saved yet: the defaults, all automatic) never opens a window;
# there is no display here, so a window would fail the run
img, layer = make_image(400, 300, 50, 40, 300, 200)
r = outpaint(img, [layer], run_mode=Gimp.RunMode.WITH_LAST_VALS)
report(last_values={"ok": r["ok"], "message": r["message"],
                    "layers": [x.get_name() for x in img.get_layers()]})
"""


@pytest.fixture(scope="module", params=["trixie", "forky"], ids=["gimp3.0", "gimp3.2"])
def outcome(request, vendor_dir):
    """One GIMP run per version with every case; returns (report, submits, session files)."""
    session = GimpSession(request.param, vendor=lambda: vendor_dir)
    try:
        session.install_plugin()
        with local_server() as server:
            body = CASE_CODE + "\n".join(case.call() for case in CASES) + "\n" + REFUSALS
            report = run(session, body, server_env(server))
            submits = len(server.submits)
        leaks = files_containing(session.host_profile, KEY)
        yield report, submits, leaks
    finally:
        session.close()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_places_the_result(outcome, case: Case):
    report, _, _ = outcome
    info = report[case.name]
    assert info["ok"], info
    new = info["new"]
    assert info["canvas"] == list(case.out_canvas)
    assert (new["x"], new["y"], new["w"], new["h"]) == case.rect
    assert new["name"] == "Outpaint"
    assert new["type"] == ("graya-image" if case.base == "gray" else "rgba-image")
    assert new["has_mask"]
    # directly above the source, in the same parent
    assert new["parent"] == info["src"]["parent"] == ("Group" if case.group else None)
    assert new["position"] == info["position_before"]
    assert info["src"]["position"] == info["position_before"] + 1
    assert info["src_unchanged"]
    assert info["selected"] == ["Source"]
    assert info["corner_alpha"] == 255
    assert info["exact"], "original pixels changed outside the seam band"
    # the reference fal got (possibly resampled and JPEG-encoded) is the original's content
    assert info["sent_picks"] > 0 and info["sent_diff"] < 20, info["sent_diff"]
    # the mask: 255 on the new area, a ramp inside the grown borders, 0 inside
    rx, ry, rw, rh = case.reference
    left, right, top, bottom = case.sides
    nx, ny, nw, nh = case.rect
    assert info["mask_row"] == rle(expected_line(nw, rx - nx, rw, left, right, case.blend))
    assert info["mask_col"] == rle(expected_line(nh, ry - ny, rh, top, bottom, case.blend))


def test_source_layer_stays_where_it_was(outcome):
    report, _, _ = outcome
    assert report["off_canvas"]["src_offsets"] == [-50, 0]
    assert report["numbers_grow"]["src_offsets"] == [64, 32]  # moved with the grown canvas
    assert report["mask_drawable"]["src_has_mask"]


def test_image_precision_is_kept(outcome):
    report, _, _ = outcome
    assert "u16" in report["rgb16"]["precision"] or "16" in report["rgb16"]["precision"]
    assert "float" in report["float"]["precision"]


def test_one_submit_per_run(outcome):
    report, submits, _ = outcome
    assert submits == len(CASES) + 1  # + the with-last-values run; recover never submits


def test_with_last_values_runs_without_a_window(outcome):
    report, _, _ = outcome
    assert report["last_values"]["ok"], report["last_values"]
    assert report["last_values"]["layers"] == ["Outpaint", "Source"]


def test_recover_gives_the_same_pixels(outcome):
    report, _, _ = outcome
    back = report["all_sides"]["recover"]
    assert back["ok"], back
    assert back["describe"]["name"] == "Outpaint (recovered)"
    assert (back["describe"]["x"], back["describe"]["y"]) == (0, 0)
    assert back["same_pixels"] and back["same_mask"]
    again = report["all_sides"]["refetch"]
    assert again["cached_files"] == 1
    assert again["ok"] and again["same_pixels"], again


@pytest.mark.parametrize(
    "name, expected",
    [
        ("nothing", "nothing to expand"),
        ("several", "several layers"),
        ("group", "layer group"),
        ("none", "select a layer"),
    ],
)
def test_refusals_are_clear_and_change_nothing(outcome, name, expected):
    report, _, _ = outcome
    info = report[f"refuse_{name}"]
    assert not info["ok"] and info["status"] == "execution-error"
    assert one_line(info["message"]) and expected in words(info["message"])
    assert report["refusals_unchanged"]


def test_key_is_in_no_profile_file_and_no_message(outcome):
    report, _, leaks = outcome
    assert leaks == []
    assert KEY not in repr(report)


TEXT_BODY = r"""
img, _ = make_image(400, 200, 0, 0, 400, 200, name="Background")
text = Gimp.TextLayer.new(img, "Outpaint me", Gimp.context_get_font(), 48.0, Gimp.Unit.pixel())
img.insert_layer(text, None, 0)
text.set_offsets(20, 20)
report(is_text=text.is_text_layer())
r = outpaint(img, [text], expand_right=64)  # a layer inside the canvas: canvas mode anyway
report(ok=r["ok"], message=r["message"], layers=[x.get_name() for x in img.get_layers()])
"""


def test_text_layer_is_outpainted(gimp):
    gimp.install_plugin()
    with local_server() as server:
        result = gimp.run_batch(PRELUDE + TEXT_BODY, env=server_env(server), load_fonts=True)
    report = result.check()
    assert report["is_text"]
    assert report["ok"], report
    assert report["layers"][0] == "Outpaint" and report["layers"][-1] == "Background"
