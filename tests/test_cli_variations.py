"""--variations through the CLI against the local server: N takes, N outputs, N submits."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_support import keyed, make_env, photo, run, text
from flux_outpaint.journal import Journal
from flux_outpaint_fal_local import start_server
from PIL import Image

pytestmark = pytest.mark.server  # the local fal server on loopback


@pytest.fixture
def setup(tmp_path):
    src = tmp_path / "in.png"
    photo(160, 120, seed=2).save(src)
    return src, keyed(make_env(tmp_path))


def test_three_takes_are_three_outputs_from_three_requests(tmp_path, setup):
    src, env = setup
    with start_server() as server:
        r = run([src, "--left", 40, "--variations", 3, "--base-url", server.base_url], env)
        submits = list(server.submits)
    assert r.returncode == 0, text(r)
    assert len(submits) == 3 and len(set(submits)) == 3
    original = np.asarray(Image.open(src).convert("RGB"))
    for n in (1, 2, 3):
        out = np.asarray(Image.open(tmp_path / f"in-outpaint-{n}.png").convert("RGB"))
        assert out.shape == (120, 200, 3)
        assert np.array_equal(out[:, 40 + 16 :], original[:, 16:])  # exact past the seam band
    assert not (tmp_path / "in-outpaint.png").exists()
    entries = Journal(tmp_path / "data" / "journal.jsonl").entries()
    assert sorted(e.request_id for e in entries) == sorted(submits)
    assert len({e.take.run for e in entries}) == 1
    assert {e.purpose.kind for e in entries} == {"cli-takes"}
    outputs = [str((tmp_path / f"in-outpaint-{n}.png").resolve()) for n in (1, 2, 3)]
    assert {e.purpose.outputs for e in entries} == {tuple(outputs)}
    assert sorted(e.output for e in entries) == outputs
    assert {e.state for e in entries} == {"placed"}


def test_n_in_the_output_name_numbers_the_takes(tmp_path, setup):
    src, env = setup
    with start_server() as server:
        r = run(
            [
                src,
                "--left",
                40,
                "--variations",
                2,
                "-o",
                tmp_path / "wide-{n}.jpg",
                "--base-url",
                server.base_url,
            ],
            env,
        )
    assert r.returncode == 0, text(r)
    for n in (1, 2):
        assert Image.open(tmp_path / f"wide-{n}.jpg").format == "JPEG"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--variations", 2, "-o", "out.png"], "{n}"),
        (["--variations", 2, "-o", "-"], "-o -"),
        (["--variations", 5], "variations"),
        (["--variations", 0], "variations"),
    ],
)
def test_usage_errors(setup, args, says):
    src, env = setup
    r = run([src, "--left", 40, *args], env)
    assert r.returncode == 2 and says in text(r)[1], text(r)


def test_one_failed_take_is_named_and_the_others_are_written(tmp_path, setup):
    src, env = setup
    with start_server(scenarios=["fail-once"]) as server:
        r = run([src, "--left", 40, "--variations", 3, "--base-url", server.base_url], env)
        submits = list(server.submits)
    out, err = text(r)
    assert r.returncode == 1, (out, err)
    written = sorted(p.name for p in tmp_path.glob("in-outpaint-*.png"))
    assert len(written) == 2 and len(submits) == 3
    line = next(ln for ln in err.splitlines() if "variations failed" in ln)
    assert "1 of 3 variations failed" in line
    failed = [rid for rid in submits if rid in line]
    assert len(failed) == 1  # the failed request is named, the others are not


def test_an_existing_take_output_skips_the_input_before_anything_is_sent(tmp_path, setup):
    src, env = setup
    (tmp_path / "in-outpaint-2.png").write_bytes(b"keep me")
    with start_server() as server:
        r = run([src, "--left", 40, "--variations", 2, "--base-url", server.base_url], env)
        submits = list(server.submits)
    assert r.returncode == 1 and submits == []
    assert (tmp_path / "in-outpaint-2.png").read_bytes() == b"keep me"


def test_dry_run_counts_every_take(setup):
    src, env = setup
    one = run([src, "--left", 40, "--dry-run", "--json"], env)
    three = run([src, "--left", 40, "--variations", 3, "--dry-run", "--json"], env)
    a = json.loads(text(one)[0].splitlines()[0])
    b = json.loads(text(three)[0].splitlines()[0])
    assert b["cost_usd_estimate"] == pytest.approx(3 * a["cost_usd_estimate"])
    assert len(b["outputs"]) == 3
