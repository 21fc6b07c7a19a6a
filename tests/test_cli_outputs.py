"""Never destroy a file: output names and types, refusals before anything is sent, atomic
writes (flux_outpaint_cli.outputs, and the CLI against the local server)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_support import (
    keyed,
    photo,
    run,
    text,
)
from flux_outpaint_cli import outputs
from flux_outpaint_cli.exits import UsageError
from PIL import Image

pytestmark = pytest.mark.server


@pytest.mark.parametrize(
    ("name", "fmt", "colour", "want"),
    [
        ("x.png", "PNG", "RGB", "x-outpaint.png"),
        ("x.webp", "WEBP", "RGB", "x-outpaint.webp"),
        ("x.tif", "TIFF", "RGB", "x-outpaint.tif"),
        ("x.TIFF", "TIFF", "RGB", "x-outpaint.TIFF"),
        ("x.jpg", "JPEG", "RGB", "x-outpaint.png"),
        ("x.jpg", "JPEG", "CMYK", "x-outpaint.tif"),
        ("x.gif", "GIF", "RGB", "x-outpaint.png"),
        ("x.bmp", "BMP", "L", "x-outpaint.png"),
    ],
)
def test_default_names_keep_formats_that_hold_the_original(name, fmt, colour, want):
    target = outputs.target_for(name, Path("d") / name, fmt, colour, None, None, None)
    assert target.path == Path("d") / want
    assert target.format == outputs.FORMATS[Path(want).suffix.lower()]


@pytest.mark.parametrize(
    ("out", "fmt"),
    [
        ("a.png", "PNG"),
        ("a.JPG", "JPEG"),
        ("a.jpeg", "JPEG"),
        ("a.webp", "WEBP"),
        ("a.tif", "TIFF"),
        ("a.tiff", "TIFF"),
    ],
)
def test_output_type_follows_the_suffix(out, fmt):
    assert outputs.target_for("x.png", Path("x.png"), "PNG", "RGB", out, None, None).format == fmt


@pytest.mark.parametrize("out", ["a.gif", "a.bmp", "a", "a.png.txt"])
def test_unknown_suffix_is_a_usage_error(out):
    with pytest.raises(UsageError):
        outputs.target_for("x.png", Path("x.png"), "PNG", "RGB", out, None, None)


def test_atomic_write_leaves_nothing_when_abandoned(tmp_path):
    target = outputs.Target(tmp_path / "o.png", "PNG")
    with outputs.atomic(target, False, lambda: True) as f:
        f.write(b"data")
    assert list(tmp_path.iterdir()) == []
    with outputs.atomic(target, False, lambda: False) as f:
        f.write(b"data")
    assert target.path.read_bytes() == b"data"
    assert [p.name for p in tmp_path.iterdir()] == ["o.png"]


def test_atomic_write_never_replaces_a_file_that_appeared(tmp_path):
    target = outputs.Target(tmp_path / "o.png", "PNG")
    with (
        pytest.raises(outputs.OutputExistsError),
        outputs.atomic(target, False, lambda: False) as f,
    ):
        f.write(b"new")
        target.path.write_bytes(b"theirs")  # the file appears while ours is written
    assert target.path.read_bytes() == b"theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["o.png"]
    with outputs.atomic(target, True, lambda: False) as f:  # --force replaces
        f.write(b"new")
    assert target.path.read_bytes() == b"new"


def test_existing_output_is_skipped_and_force_replaces_it(tmp_path, env, server):
    src = tmp_path / "in.png"
    photo(96, 80).save(src)
    out = tmp_path / "in-outpaint.png"
    out.write_bytes(b"an earlier paid result")
    r = run([src, "--left", 16, "--base-url", server.base_url], keyed(env))
    assert r.returncode == 1
    assert "exists; --force replaces it" in text(r)[1]
    assert out.read_bytes() == b"an earlier paid result"
    assert server.submits == []  # refused before anything was sent
    r = run([src, "--left", 16, "--base-url", server.base_url, "--force"], keyed(env))
    assert r.returncode == 0, text(r)[1]
    assert Image.open(out).size == (112, 80)


@pytest.mark.parametrize("force", [False, True])
def test_output_that_is_the_input_is_a_usage_error(tmp_path, env, server, force):
    src = tmp_path / "photo.jpg"
    photo(96, 80).save(src, quality=90)
    before = src.read_bytes()
    args = [src, "--left", 16, "--base-url", server.base_url, "-o", src]
    r = run([*args, "--force"] if force else args, keyed(env))
    assert r.returncode == 2
    assert "is the input" in text(r)[1]
    assert src.read_bytes() == before
    assert server.submits == []


def test_two_inputs_writing_one_output_refuse_the_batch(tmp_path, env, server):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    photo(96, 80, seed=1).save(tmp_path / "a" / "x.jpg")
    photo(96, 80, seed=2).save(tmp_path / "b" / "x.jpg")
    out_dir = tmp_path / "d"
    r = run(
        [
            tmp_path / "a" / "x.jpg",
            tmp_path / "b" / "x.jpg",
            "--right",
            16,
            "--jobs",
            2,
            "--out-dir",
            out_dir,
            "--base-url",
            server.base_url,
        ],
        keyed(env),
    )
    assert r.returncode == 2
    assert "would both write" in text(r)[1]
    assert server.submits == []
    assert not out_dir.exists()


def test_an_output_that_is_another_input_is_refused(tmp_path, env, server):
    photo(96, 80, seed=1).save(tmp_path / "a.png")
    photo(96, 80, seed=2).save(tmp_path / "a-outpaint.png")
    r = run(
        [
            tmp_path / "a.png",
            tmp_path / "a-outpaint.png",
            "--right",
            16,
            "--force",
            "--base-url",
            server.base_url,
        ],
        keyed(env),
    )
    assert r.returncode == 2
    assert server.submits == []


def test_webp_and_tiff_of_one_name_no_longer_collide(tmp_path, env):
    photo(96, 80, seed=1).save(tmp_path / "x.webp", lossless=True)
    photo(96, 80, seed=2).save(tmp_path / "x.tif")
    r = run([tmp_path / "x.webp", tmp_path / "x.tif", "--right", 16, "--local"], env)
    assert r.returncode == 0, text(r)[1]
    assert Image.open(tmp_path / "x-outpaint.webp").format == "WEBP"
    assert Image.open(tmp_path / "x-outpaint.tif").format == "TIFF"


@pytest.mark.parametrize(
    ("suffix", "fmt"),
    [
        (".jpg", "JPEG"),
        (".jpeg", "JPEG"),
        (".webp", "WEBP"),
        (".tif", "TIFF"),
        (".tiff", "TIFF"),
        (".png", "PNG"),
    ],
)
def test_written_type_follows_the_name(tmp_path, env, suffix, fmt):
    src = tmp_path / "in.png"
    photo(96, 80).save(src)
    out = tmp_path / f"out{suffix}"
    r = run([src, "--left", 16, "--local", "-o", out], env)
    assert r.returncode == 0, text(r)[1]
    assert Image.open(out).format == fmt
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_jpeg_quality_flag(tmp_path, env):
    src = tmp_path / "in.png"
    photo(300, 200).save(src)
    default, low = tmp_path / "default.jpg", tmp_path / "low.jpg"
    assert run([src, "--left", 32, "--local", "-o", default], env).returncode == 0
    assert run([src, "--left", 32, "--local", "-o", low, "--quality", 50], env).returncode == 0
    assert default.stat().st_size > 1.5 * low.stat().st_size
    # The default is visually lossless: close to the original everywhere.
    diff = np.abs(
        np.asarray(Image.open(default).convert("RGB"))[:, 32:].astype(int)
        - np.asarray(Image.open(src)).astype(int)
    )
    assert diff.mean() < 4  # a noisy photo; q50 is about twice as far off


def test_a_result_that_cannot_be_placed_writes_nothing(tmp_path, env):
    import flux_outpaint_fal_local

    srv = flux_outpaint_fal_local.start_server(scenarios=["wrong-size"])
    try:
        src = tmp_path / "in.png"
        photo(96, 80).save(src)
        out = tmp_path / "out.png"
        r = run([src, "--right", 48, "--base-url", srv.base_url, "-o", out], keyed(env))
        _, err = text(r)
        assert r.returncode == 1
        (rid,) = srv.submits
        assert err.strip().splitlines()[-1].endswith(f"recover with: flux-outpaint --recover {rid}")
        assert not out.exists()
        assert [p.name for p in tmp_path.iterdir()] == ["in.png", "data"] or not any(
            p.name.startswith(".") for p in tmp_path.iterdir()
        )
    finally:
        srv.stop()


def test_an_output_that_is_an_input_under_another_name_is_caught(tmp_path):
    src = tmp_path / "in.png"
    src.write_bytes(b"x")
    alias = tmp_path / "alias.png"
    alias.hardlink_to(src)
    target = outputs.Target(alias, "PNG")
    with pytest.raises(UsageError, match="is the input"):
        outputs.check_batch([("in.png", src, target)])
    many = [
        (f"{i}.png", tmp_path / f"{i}.png", outputs.Target(tmp_path / f"o{i}.png", "PNG"))
        for i in range(500)
    ]
    outputs.check_batch(many)  # linear: a big batch is checked at once
