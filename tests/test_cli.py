"""The CLI end to end against the local server: the full canvas, batches, the conventions of a
command-line tool (exit codes, --version, --help, stdin/stdout, -q/-v, summaries, dry runs)
and its failure messages."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from cli_support import (
    free_port,
    keyed,
    photo,
    run,
    run_process,
    text,
)
from PIL import Image

pytestmark = pytest.mark.server  # the local fal server on loopback


def test_local_run_writes_full_canvas_with_exact_original(tmp_path, env):
    src = tmp_path / "in.png"
    photo(200, 150).save(src)
    out = tmp_path / "out.png"
    r = run(
        [src, "--left", 64, "--right", 32, "--bottom", 16, "--seam-blend", 0, "--local", "-o", out],
        env,
    )
    assert r.returncode == 0, text(r)[1]
    result = np.asarray(Image.open(out).convert("RGB"))
    assert result.shape == (166, 296, 3)
    original = np.asarray(Image.open(src).convert("RGB"))
    assert np.array_equal(result[0:150, 64:264], original)
    # The new band is filled, not left black.
    assert result[:, :64].std() > 5


def test_seam_blend_keeps_original_exact_outside_the_band(tmp_path, env):
    src = tmp_path / "in.png"
    photo(180, 120, seed=3).save(src)
    out = tmp_path / "out.png"
    r = run([src, "--left", 40, "--top", 40, "--seam-blend", 12, "--local", "-o", out], env)
    assert r.returncode == 0, text(r)[1]
    result = np.asarray(Image.open(out).convert("RGB")).astype(int)
    original = np.asarray(Image.open(src).convert("RGB")).astype(int)
    region = result[40:160, 40:220]
    # Left and top were expanded: only their 12-px bands may differ.
    assert np.array_equal(region[12:, 12:], original[12:, 12:])


def test_downscaled_photo_fills_the_whole_canvas(tmp_path, env):
    src = tmp_path / "big.jpg"
    photo(2400, 1600, seed=4).save(src, quality=92)
    out = tmp_path / "big.png"
    r = run([src, "--left", 600, "--right", 600, "--local", "-o", out, "--seam-blend", 0], env)
    assert r.returncode == 0, text(r)[1]
    result = np.asarray(Image.open(out).convert("RGB"))
    assert result.shape == (1600, 3600, 3)
    assert np.array_equal(result[:, 600:3000], np.asarray(Image.open(src).convert("RGB")))
    assert result[:, :600].std() > 5 and result[:, 3000:].std() > 5
    assert result[:, 0].std() > 0 and result[:, -1].std() > 0  # no empty edge column


def test_transparent_margins_are_expanded_without_numbers(tmp_path, env):
    img = Image.new("RGBA", (160, 120), (0, 0, 0, 0))
    img.paste(photo(100, 80).convert("RGBA"), (30, 20))
    src = tmp_path / "margins.png"
    img.save(src)
    out = tmp_path / "filled.png"
    r = run([src, "--local", "--seam-blend", 0, "-o", out], env)
    assert r.returncode == 0, text(r)[1]
    result = np.asarray(Image.open(out).convert("RGBA"))
    assert result.shape == (120, 160, 4)
    assert (result[..., 3] == 255).all()
    assert np.array_equal(result[20:100, 30:130], np.asarray(img)[20:100, 30:130])


@pytest.mark.slow
def test_dry_run_prints_plan_and_cost_without_sending(tmp_path, env):
    src = tmp_path / "in.png"
    photo(2400, 1600).save(src, compress_level=0)  # stored: the input, not its zlib, is tested
    port = free_port()  # nothing listens: a dry run must not even try
    base = ["--left", 800, "--right", 800, "--dry-run", "--base-url", f"http://127.0.0.1:{port}"]
    r = run([src, *base, "--json"], env)
    out, err = text(r)
    assert r.returncode == 0, err
    lines = [json.loads(x) for x in out.strip().splitlines()]
    info = lines[0]
    assert info["canvas"] == [4000, 1600]  # 6.4 MP: more than fal takes
    assert info["downscaled"] is True
    w, h = info["request_output"]
    assert w * h <= 4_194_304
    assert info["transport"] in ("inline", "upload")
    assert info["payload_bytes"] > 1000
    assert info["cost_usd_estimate"] > 0
    assert lines[-1]["total_cost_usd_estimate"] == info["cost_usd_estimate"]
    assert not (tmp_path / "in-outpaint.png").exists()
    r = run([src, *base], env)
    out, err = text(r)
    assert r.returncode == 0 and "estimate" in out.lower()
    assert "total estimated cost" in err.lower()


def test_dry_run_totals_a_batch(tmp_path, env):
    paths = []
    for i, size in enumerate([(300, 200), (600, 400), (1200, 800)]):
        p = tmp_path / f"p{i}.png"
        photo(*size, seed=i).save(p)
        paths.append(p)
    r = run([*paths, "--right", 300, "--dry-run", "--json"], env)
    out, err = text(r)
    assert r.returncode == 0, err
    lines = [json.loads(x) for x in out.strip().splitlines()]
    costs = [x["cost_usd_estimate"] for x in lines[:-1]]
    assert len(costs) == 3
    assert lines[-1]["images"] == 3
    assert lines[-1]["total_cost_usd_estimate"] == pytest.approx(sum(costs))


def test_batch_with_four_concurrent_jobs_ends_with_a_summary(tmp_path, env):
    inputs = []
    for i in range(6):
        p = tmp_path / f"img{i}.png"
        photo(96 + i * 8, 80, seed=i).save(p)
        inputs.append(p)
    out_dir = tmp_path / "out"
    r = run([*inputs, "--right", 48, "--jobs", 4, "--local", "--out-dir", out_dir, "--json"], env)
    out, err = text(r)
    assert r.returncode == 0, err
    lines = [json.loads(x) for x in out.strip().splitlines()]
    results, summary = lines[:-1], lines[-1]["summary"]
    assert len(results) == 6
    assert len({x["request_id"] for x in results}) == 6
    assert summary["done"] == 6 and summary["failed"] == 0 and summary["skipped"] == 0
    assert summary["cost_usd_estimate"] == pytest.approx(
        sum(x["cost_usd_estimate"] for x in results)
    )
    for i, p in enumerate(inputs):
        written = Image.open(out_dir / f"{p.stem}-outpaint.png")
        assert written.size == (96 + i * 8 + 48, 80)


def test_text_summary_counts_done_failed_and_skipped(tmp_path, env):
    good, bad, there = tmp_path / "good.png", tmp_path / "bad.png", tmp_path / "there.png"
    photo(96, 80).save(good)
    bad.write_text("not an image")
    photo(96, 80).save(there)
    (tmp_path / "there-outpaint.png").write_bytes(b"keep me")
    r = run([good, bad, there, "--left", 16, "--local"], env)
    out, err = text(r)
    assert r.returncode == 1
    assert "done 1, failed 1, skipped 1" in err
    assert "estimated cost $" in err
    assert (tmp_path / "there-outpaint.png").read_bytes() == b"keep me"
    assert f"{good} -> {tmp_path / 'good-outpaint.png'}" in out


def test_request_id_is_shown_when_submitted(tmp_path, env, server):
    src = tmp_path / "in.png"
    photo(96, 80).save(src)
    r = run([src, "--left", 16, "--base-url", server.base_url], keyed(env))
    _, err = text(r)
    assert r.returncode == 0, err
    (rid,) = server.submits
    assert f"request {rid}" in err
    # The local steps after the download are shown too.
    for step in ("downloading", "composing", "writing"):
        assert step in err


def test_quiet_prints_only_errors(tmp_path, env):
    src = tmp_path / "in.png"
    photo(96, 80).save(src)
    r = run([src, "--left", 16, "--local", "-q"], env)
    out, err = text(r)
    assert r.returncode == 0
    assert out == "" and err == ""
    r = run([src, "--left", 16, "--local", "-q"], env)  # exists now: one line, exit 1
    out, err = text(r)
    assert r.returncode == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and "exists" in err


def test_verbose_shows_retries_and_their_reasons(tmp_path, env):
    import flux_outpaint_fal_local

    srv = flux_outpaint_fal_local.start_server(scenarios=["429-once", "500-once"])
    try:
        src = tmp_path / "in.png"
        photo(96, 80).save(src)
        r = run([src, "--left", 16, "--base-url", srv.base_url, "-v"], keyed(env))
        _, err = text(r)
        assert r.returncode == 0, err
        assert "submit attempt 1 failed (HTTP 429); retrying" in err
        quiet = run([src, "--left", 16, "--base-url", srv.base_url, "--force"], keyed(env))
        assert "retrying" not in text(quiet)[1]
    finally:
        srv.stop()


def test_stdin_to_stdout(tmp_path, env):
    """Through real pipes: a process reads its stdin and writes the image on its stdout."""
    buffer = tmp_path / "in.png"
    photo(96, 80, seed=2).save(buffer)
    r = run_process(
        ["-", "--left", 32, "--local", "-o", "-", "--seam-blend", 0], env, stdin=buffer.read_bytes()
    )
    assert r.returncode == 0, text(r)[1]
    out_path = tmp_path / "from-stdout.png"
    out_path.write_bytes(r.stdout)
    written = Image.open(out_path)
    assert written.format == "PNG" and written.size == (128, 80)
    assert np.array_equal(
        np.asarray(written.convert("RGB"))[:, 32:], np.asarray(Image.open(buffer))
    )
    err = r.stderr.decode()
    assert "stdin" in err  # progress went to stderr


def test_stdout_type_follows_output_type(tmp_path, env):
    src = tmp_path / "in.png"
    photo(96, 80).save(src)
    r = run([src, "--left", 32, "--local", "-o", "-", "--output-type", "jpeg", "--json"], env)
    assert r.returncode == 0, text(r)[1]
    assert r.stdout[:3] == b"\xff\xd8\xff"
    assert b'"request_id"' in r.stderr  # the JSON line moved to stderr: stdout is the image


def test_stdin_needs_an_output(tmp_path, env):
    r = run(["-", "--left", 32, "--local"], env, stdin=b"")
    assert r.returncode == 2


def test_version_and_help(env):
    r = run(["--version"], env)
    assert r.returncode == 0 and text(r)[0].startswith("flux-outpaint ")
    r = run(["--help"], env)
    out = " ".join(text(r)[0].split())
    assert r.returncode == 0
    assert "--format" in out and "not the written file's type" in out
    assert "metadata:" in out and "ICC" in out and "EXIF" in out
    # Every option says what it does and its default.
    from flux_outpaint_cli.args import parser

    for action in parser()._actions:
        if action.dest in ("help", "version"):
            continue
        assert action.help and "default" in action.help, action.dest


@pytest.mark.parametrize(
    ("make", "args", "needle"),
    [
        ("missing", ["--left", 10, "--local"], "no such file"),
        ("text", ["--left", 10, "--local"], "not an image"),
        ("ok", ["--left", 0, "--local"], "nothing to expand"),
        ("ok", ["--left", 2049, "--local"], "2048"),
        ("ok", ["--left", 10], "fal api key"),
    ],
    ids=["missing-file", "not-an-image", "zero-expansion", "over-2048", "no-key"],
)
def test_bad_input_gives_one_clear_line_and_exit_1(tmp_path, env, make, args, needle):
    src = tmp_path / "in.png"
    if make == "ok":
        photo(64, 64).save(src)
    elif make == "text":
        src.write_text("hello")
    r = run([src, *args], env)
    _, err = text(r)
    assert r.returncode == 1, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert lines, "no message"
    assert needle in lines[-1].lower(), lines
    assert "Traceback" not in err


def test_unreachable_server_fails_cleanly(tmp_path, env):
    src = tmp_path / "in.png"
    photo(64, 64).save(src)
    port = free_port()
    r = run(
        [src, "--left", 32, "--base-url", f"http://127.0.0.1:{port}", "--timeout", 20], keyed(env)
    )
    out, err = text(r)
    assert r.returncode == 1
    last = err.strip().splitlines()[-1].lower()
    assert "reach" in last or "connect" in last, err
    assert "test-key-123456" not in err + out
    assert "Traceback" not in err
    assert "recover with" not in err  # nothing was submitted


@pytest.mark.parametrize(
    "args",
    [
        ["x.png", "--left", 5, "--to", "100x100"],
        ["x.png", "--to", "big"],
        ["x.png", "--aspect", "16x9"],
        ["x.png", "--aspect", "0:1"],
        ["x.png", "--left", "-3"],
        ["x.png", "--jobs", 0],
        ["x.png", "--quality", 101],
        ["x.png", "--left", 5, "-q", "-v"],
        ["a.png", "b.png", "-o", "c.png", "--left", 5],
        ["--left", 5],
        ["x.png", "--left", 5, "--seam-blend", 999],
        ["x.png", "--recover", "--left", 5],
    ],
)
def test_usage_errors_exit_2(env, args):
    r = run(args, env)
    assert r.returncode == 2, text(r)
    assert "usage:" in text(r)[1]


def test_unknown_output_suffix_is_a_usage_error(tmp_path, env):
    src = tmp_path / "in.png"
    photo(64, 64).save(src)
    r = run([src, "--left", 8, "--local", "-o", tmp_path / "out.gif"], env)
    assert r.returncode == 2
    assert "cannot tell the output type" in text(r)[1]


def test_console_command_is_declared():
    from cli_support import ROOT

    pyproject = (ROOT / "pyproject.toml").read_text()
    scripts = pyproject[pyproject.index("[project.scripts]") :].split("\n\n")[0]
    assert 'flux-outpaint = "flux_outpaint_cli.main:entry"' in scripts
    from flux_outpaint_cli.main import entry

    assert callable(entry)
    assert os.access(ROOT / "scripts" / "outpaint.py", os.R_OK)


def test_an_unwritable_data_folder_stops_the_run_before_anything_is_sent(tmp_path, env):
    import flux_outpaint_fal_local

    src = tmp_path / "in.png"
    photo(64, 64).save(src)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    env = {**keyed(env), "FLUX_OUTPAINT_DATA_DIR": str(blocker / "data")}
    out = tmp_path / "out.png"
    with flux_outpaint_fal_local.start_server() as server:
        r = run([src, "--left", 32, "--base-url", server.base_url, "-o", out], env)
        submits = len(server.submits)
    _, err = text(r)
    assert r.returncode == 1 and submits == 0 and not out.exists(), err
    assert "Cannot write the journal" in err and "nothing was sent" in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "args",
    [
        ["x.png", "--left", "-3"],  # a usage error: argparse's exit
        ["{src}", "--right", 40, "--dry-run"],
        ["{src}", "--right", 40, "--dry-run", "--json", "-o", "-"],
    ],
    ids=["usage-error", "dry-run", "dry-run-json-stdout"],
)
def test_a_run_in_this_process_shows_what_a_process_shows(tmp_path, env, args):
    """The tests' in-process runner against the real thing: the same status, the same bytes."""
    src = tmp_path / "in.png"
    photo(96, 80).save(src)
    args = [str(src) if a == "{src}" else a for a in args]
    inside, outside = run(args, env), run_process(args, env)
    assert (inside.returncode, inside.stdout, inside.stderr) == (
        outside.returncode,
        outside.stdout,
        outside.stderr,
    )
