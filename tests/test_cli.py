"""The CLI end to end against the in-process local server, and its failure messages."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.server  # the local fal server on loopback

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / "scripts" / "outpaint.py"


def photo(w: int, h: int, seed: int = 1) -> Image.Image:
    """A photo-like image: smooth structure plus fine noise, so JPEG is not lossless on it."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack(
        [
            128 + 90 * np.sin(x / 17.0 + seed),
            128 + 90 * np.cos(y / 23.0),
            128 + 60 * np.sin((x + y) / 31.0),
        ],
        axis=-1,
    )
    noisy = base + rng.normal(0, 12, size=base.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in ("FAL_KEY", "FAL_QUEUE_URL")}
    e["FLUX_OUTPAINT_DATA_DIR"] = str(tmp_path / "data")
    e["FLUX_OUTPAINT_CONFIG_DIR"] = str(tmp_path / "config")
    e["FLUX_OUTPAINT_TIME_SCALE"] = "0.02"  # retry pauses of a few milliseconds
    return e


def run(args: list, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(CLI), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_local_run_writes_full_canvas_with_exact_original(tmp_path, env):
    src = tmp_path / "in.png"
    photo(200, 150).save(src)
    out = tmp_path / "out.png"
    r = run(
        [src, "--left", 64, "--right", 32, "--bottom", 16, "--seam-blend", 0, "--local", "-o", out],
        env,
    )
    assert r.returncode == 0, r.stderr
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
    assert r.returncode == 0, r.stderr
    result = np.asarray(Image.open(out).convert("RGB"))
    original = np.asarray(Image.open(src).convert("RGB"))
    region = result[40:160, 40:220]
    # Left and top were expanded: only their 12-px bands may differ.
    assert np.array_equal(region[12:, 12:], original[12:, 12:])


def test_transparent_margins_are_expanded_without_numbers(tmp_path, env):
    img = Image.new("RGBA", (160, 120), (0, 0, 0, 0))
    img.paste(photo(100, 80).convert("RGBA"), (30, 20))
    src = tmp_path / "margins.png"
    img.save(src)
    out = tmp_path / "filled.png"
    r = run([src, "--local", "--seam-blend", 0, "-o", out], env)
    assert r.returncode == 0, r.stderr
    result = np.asarray(Image.open(out).convert("RGBA"))
    assert result.shape == (120, 160, 4)
    assert (result[..., 3] == 255).all()
    assert np.array_equal(result[20:100, 30:130], np.asarray(img)[20:100, 30:130])


@pytest.mark.slow
def test_dry_run_prints_plan_and_cost_without_sending(tmp_path, env):
    src = tmp_path / "in.png"
    photo(3000, 2000).save(src)
    port = free_port()  # nothing listens: a dry run must not even try
    r = run(
        [
            src,
            "--left",
            1000,
            "--right",
            1000,
            "--dry-run",
            "--json",
            "--base-url",
            f"http://127.0.0.1:{port}",
        ],
        env,
    )
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["canvas"] == [5000, 2000]
    assert info["downscaled"] is True
    w, h = info["request_output"]
    assert w * h <= 4_194_304
    assert info["transport"] in ("inline", "upload")
    assert info["cost_usd_estimate"] > 0
    text = run([src, "--left", 1000, "--right", 1000, "--dry-run"], env)
    assert text.returncode == 0 and "estimate" in text.stdout.lower()


def test_batch_with_four_concurrent_jobs(tmp_path, env):
    inputs = []
    for i in range(6):
        p = tmp_path / f"img{i}.png"
        photo(96 + i * 8, 80, seed=i).save(p)
        inputs.append(p)
    out_dir = tmp_path / "out"
    r = run([*inputs, "--right", 48, "--jobs", 4, "--local", "--out-dir", out_dir, "--json"], env)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.strip().splitlines()]
    assert len(lines) == 6
    assert len({x["request_id"] for x in lines}) == 6
    for i, p in enumerate(inputs):
        written = Image.open(out_dir / f"{p.stem}-outpaint.png")
        assert written.size == (96 + i * 8 + 48, 80)


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
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert lines, "no message"
    assert needle in lines[-1].lower(), lines
    assert "Traceback" not in r.stderr


def test_unreachable_server_fails_cleanly(tmp_path, env):
    src = tmp_path / "in.png"
    photo(64, 64).save(src)
    env = {**env, "FAL_KEY": "test-key-123456"}
    port = free_port()
    r = run([src, "--left", 32, "--base-url", f"http://127.0.0.1:{port}", "--timeout", 20], env)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1].lower()
    assert "reach" in last or "connect" in last, r.stderr
    assert "test-key-123456" not in r.stderr + r.stdout
    assert "Traceback" not in r.stderr


def test_usage_errors_exit_2(tmp_path, env):
    r = run(["x.png", "--left", 5, "--to", "100x100"], env)
    assert r.returncode == 2
    r = run(["x.png", "--to", "big"], env)
    assert r.returncode == 2


def test_an_unwritable_data_folder_stops_the_run_before_anything_is_sent(tmp_path, env):
    import fal_local

    src = tmp_path / "in.png"
    photo(64, 64).save(src)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    env = {**env, "FAL_KEY": "test-key-123456", "FLUX_OUTPAINT_DATA_DIR": str(blocker / "data")}
    out = tmp_path / "out.png"
    with fal_local.start_server() as server:
        r = run([src, "--left", 32, "--base-url", server.base_url, "-o", out], env)
        submits = len(server.submits)
    assert r.returncode == 1 and submits == 0 and not out.exists()
    last = r.stderr.strip().splitlines()[-1]
    assert "Cannot write the journal" in last and "nothing was sent" in last, r.stderr
    assert "Traceback" not in r.stderr
