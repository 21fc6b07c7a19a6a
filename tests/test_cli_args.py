"""--aspect and the other value parsers of flux_outpaint_cli.args, and --aspect end to end for
several ratios and anchors against the local server."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from cli_support import (
    photo,
    run,
    text,
)
from flux_outpaint import geometry
from flux_outpaint_cli.args import Options, _aspect, parse_args, parser
from PIL import Image

pytestmark = pytest.mark.server


@pytest.mark.parametrize(
    ("given", "ratio"),
    [
        ("16:9", (16, 9)),
        ("4:3", (4, 3)),
        ("1:1", (1, 1)),
        ("2.39:1", (239, 100)),
        ("1.5:1", (3, 2)),
        ("9:16", (9, 16)),
        ("32:18", (16, 9)),
    ],
)
def test_aspect_is_a_ratio_of_whole_numbers(given, ratio):
    assert _aspect(given) == ratio
    assert all(isinstance(v, int) for v in parse_args(["x.png", "--aspect", given]).aspect)


@pytest.mark.parametrize(
    ("size", "aspect", "anchor", "canvas", "at"),
    [
        ((300, 200), "16:9", "center", (356, 200), (28, 0)),
        ((300, 200), "16:9", "left", (356, 200), (0, 0)),
        ((300, 200), "16:9", "right", (356, 200), (56, 0)),
        ((300, 200), "1:1", "top", (300, 300), (0, 0)),
        ((300, 200), "1:1", "bottom", (300, 300), (0, 100)),
        ((300, 200), "1:1", "center", (300, 300), (0, 50)),
        ((200, 300), "2.39:1", "bottom-right", (717, 300), (517, 0)),
        ((300, 200), "9:16", "top-left", (300, 534), (0, 0)),
    ],
)
def test_aspect_plans_for_ratios_and_anchors(size, aspect, anchor, canvas, at):
    args = parse_args(["x.png", "--aspect", aspect, "--anchor", anchor])
    source = geometry.from_aspect(*size, *args.aspect, args.anchor)
    assert (source.canvas_width, source.canvas_height) == canvas
    assert (source.reference.x, source.reference.y) == at


@pytest.mark.parametrize(
    ("aspect", "anchor", "canvas", "at"),
    [
        ("16:9", "center", (214, 120), (47, 0)),
        ("16:9", "left", (214, 120), (0, 0)),
        ("4:3", "right", (160, 120), (40, 0)),
        ("1:1", "bottom", (120, 120), (0, 0)),
        ("2.39:1", "top-right", (287, 120), (167, 0)),
        ("3:4", "bottom", (120, 160), (0, 40)),
        ("9:16", "top", (120, 214), (0, 0)),
    ],
)
def test_aspect_through_the_cli(tmp_path, env, aspect, anchor, canvas, at):
    # A square-ish source: 120×120 for the "taller" cases, 120 wide otherwise.
    w, h = (120, 120)
    src = tmp_path / "in.png"
    photo(w, h, seed=len(aspect)).save(src)
    out = tmp_path / "out.png"
    args = [src, "--aspect", aspect, "--anchor", anchor, "--local", "-o", out]
    r = run([*args, "--seam-blend", 0, "--json"], env)
    out_text, err = text(r)
    if canvas == (120, 120):  # the image already has this ratio: nothing to expand
        assert r.returncode == 1 and "nothing to expand" in err.lower()
        return
    assert r.returncode == 0, err
    record = json.loads(out_text.splitlines()[0])
    written = Image.open(out)
    assert written.size == canvas == tuple(record["size"])
    x, y = at
    got = np.asarray(written.convert("RGB"))[y : y + h, x : x + w]
    assert np.array_equal(got, np.asarray(Image.open(src)))


def test_readme_aspect_example_ratio_on_a_photo_that_has_it_already(tmp_path, env):
    src = tmp_path / "wide.png"
    photo(160, 90).save(src)
    r = run([src, "--aspect", "16:9", "--local"], env)
    assert r.returncode == 1
    assert "nothing to expand" in text(r)[1].lower()


def test_every_option_has_a_field_in_options():
    # an option added to the parser but not to Options would be dropped without a word
    dests = {a.dest for a in parser()._actions if a.dest not in ("help", "version")}
    derived = {"numbers", "stdout_is_data"}
    assert dests | derived == {f.name for f in dataclasses.fields(Options)}


def test_options_are_checked_once_and_frozen():
    options = parse_args(["a.png", "b.png", "--left", "64", "--jobs", "2"])
    assert options.inputs == ("a.png", "b.png")
    assert options.numbers and (options.left, options.right) == (64, None)
    assert options.jobs == 2 and not options.stdout_is_data
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.force = True
