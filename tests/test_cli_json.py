"""``--json``: one line for every input — written, failed (before or after its submit) and
not sent — then the summary line; and an --aspect that only rounding asks for is not sent."""

from __future__ import annotations

import json

import flux_outpaint_fal_local
import pytest
from cli_support import keyed, photo, run, text

pytestmark = pytest.mark.server


def test_every_input_gets_a_json_line_failed_ones_included(tmp_path, env):
    good, other = tmp_path / "good.png", tmp_path / "other.png"
    photo(64, 48).save(good)
    photo(64, 48, seed=2).save(other)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image at all")
    srv = flux_outpaint_fal_local.start_server(scenarios=["fail-once"])
    try:
        r = run(
            [
                good,
                broken,
                other,
                "--left",
                16,
                "--base-url",
                srv.base_url,
                "--json",
                "--jobs",
                1,
                "--out-dir",
                tmp_path,
            ],
            keyed(env),
        )
    finally:
        srv.stop()
    out, err = text(r)
    assert r.returncode == 1, err
    lines = [json.loads(line) for line in out.splitlines()]
    *per_input, summary = lines
    by_input = {rec["input"]: rec for rec in per_input}
    assert set(by_input) == {str(good), str(broken), str(other)}
    assert by_input[str(broken)]["ok"] is False and by_input[str(broken)]["status"] == "failed"
    failed = [rec for rec in per_input if rec.get("ok") is False and rec.get("request_ids")]
    assert len(failed) == 1 and failed[0]["status"] == "failed"  # the job fal failed
    assert "error" in failed[0] and "\n" not in failed[0]["error"]
    assert sum(1 for rec in per_input if "output" in rec) == 1
    assert "failed" in json.dumps(summary)


def test_an_aspect_only_rounding_asks_for_is_not_sent(tmp_path, env, server):
    # 451×300 at 3:2 wants 300.67 rows: one paid row for rounding alone
    src = tmp_path / "in.png"
    photo(451, 300).save(src)
    r = run([src, "--aspect", "3:2", "--base-url", server.base_url, "--json"], keyed(env))
    out, err = text(r)
    assert r.returncode == 1
    assert "already has the aspect 3:2" in err and "nothing sent" in err
    assert server.submits == []
    assert json.loads(out.splitlines()[0])["status"] == "failed"


def test_an_animated_input_is_refused_not_cut_to_its_first_frame(tmp_path, env, server):
    src = tmp_path / "anim.gif"
    frames = [photo(64, 48, seed=n).convert("P") for n in range(3)]
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=100)
    still = tmp_path / "still.gif"
    frames[0].save(still)
    r = run(
        [src, still, "--left", 16, "--base-url", server.base_url, "--out-dir", tmp_path], keyed(env)
    )
    _, err = text(r)
    assert r.returncode == 1
    assert "anim.gif: an animation or multi-page file (3 frames)" in err
    assert len(server.submits) == 1  # the still one only
    assert (tmp_path / "still-outpaint.png").exists() and not list(tmp_path.glob("anim-*"))
