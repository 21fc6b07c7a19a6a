"""--recover: a paid result back into its output from the journal and the result cache, or
from fal by id; never a submit.  Against the local server in this process."""

from __future__ import annotations

import json
import shutil
import threading
import time

import pytest
from cli_support import keyed, photo, run, text
from flux_outpaint.journal import Journal
from flux_outpaint.journal_records import GimpLayer
from PIL import Image

pytestmark = pytest.mark.server


def journal_of(env) -> Journal:
    from pathlib import Path

    return Journal(Path(env["FLUX_OUTPAINT_DATA_DIR"]) / "journal.jsonl")


def first_run(tmp_path, env, server, *extra):
    src = tmp_path / "in.jpg"
    photo(120, 90, seed=3).save(src, quality=93)
    out = tmp_path / "out.png"
    r = run(
        [src, "--left", 40, "--top", 10, "--base-url", server.base_url, "-o", out, *extra],
        keyed(env),
    )
    assert r.returncode == 0, text(r)[1]
    (rid,) = server.submits
    return src, out, rid


def test_recover_by_id_rebuilds_the_same_output_without_submitting(tmp_path, env, server):
    src, out, rid = first_run(tmp_path, env, server, "--seam-blend", 5)
    first = out.read_bytes()
    out.unlink()
    r = run(["--recover", rid, "--base-url", server.base_url], keyed(env))
    assert r.returncode == 0, text(r)[1]
    assert out.read_bytes() == first
    assert server.submits == [rid]  # no new request
    entry = journal_of(env).find(rid)
    assert entry is not None and entry.state == "placed"
    purpose = entry.purpose
    assert purpose.kind == "cli-file" and entry.output == str(out)
    assert purpose.input == str(src) and len(purpose.input_sha256) == 64
    assert purpose.output == str(out) and entry.plan.canvas == (160, 100)


def test_recover_refuses_to_overwrite_and_force_replaces(tmp_path, env, server):
    _, out, rid = first_run(tmp_path, env, server)
    r = run(["--recover", rid, "--local"], env)
    assert r.returncode == 1 and "exists" in text(r)[1]
    r = run(["--recover", rid, "--local", "--force"], env)
    assert r.returncode == 0, text(r)[1]


def test_recover_fetches_from_fal_when_the_cache_is_gone(tmp_path, env, server):
    _, out, rid = first_run(tmp_path, env, server)
    first = out.read_bytes()
    out.unlink()
    shutil.rmtree(tmp_path / "data" / "results")
    r = run(["--recover", rid, "--base-url", server.base_url], keyed(env))
    assert r.returncode == 0, text(r)[1]
    assert out.read_bytes() == first
    assert server.submits == [rid]
    assert journal_of(env).cached_result(rid) is not None  # cached again


def test_recover_to_another_output_and_type(tmp_path, env, server):
    _, out, rid = first_run(tmp_path, env, server)
    other = tmp_path / "again.webp"
    r = run(["--recover", rid, "-o", other, "--local", "--json"], env)
    out_text, err = text(r)
    assert r.returncode == 0, err
    assert json.loads(out_text)["output"] == str(other)
    assert Image.open(other).format == "WEBP"
    assert Image.open(other).size == Image.open(out).size


def test_recover_with_a_moved_input_checks_its_hash(tmp_path, env, server):
    src, out, rid = first_run(tmp_path, env, server)
    moved = tmp_path / "moved.jpg"
    src.rename(moved)
    out.unlink()
    r = run(["--recover", rid, "--local"], env)
    assert r.returncode == 1 and "no such file" in text(r)[1].lower()
    r = run(["--recover", rid, moved, "--local"], env)
    assert r.returncode == 0, text(r)[1]
    assert out.exists()
    photo(120, 90, seed=99).save(tmp_path / "other.jpg")
    r = run(["--recover", rid, tmp_path / "other.jpg", "--local", "--force"], env)
    assert r.returncode == 1 and "not the image" in text(r)[1]


def test_recover_of_stdin_input_needs_the_image_again(tmp_path, env, server):
    src = tmp_path / "in.png"
    photo(96, 80).save(src)
    r = run(
        ["-", "--left", 16, "--base-url", server.base_url, "-o", tmp_path / "o.png"],
        keyed(env),
        stdin=src.read_bytes(),
    )
    assert r.returncode == 0, text(r)[1]
    (rid,) = server.submits
    r = run(["--recover", rid, "--local", "--force"], env)
    assert r.returncode == 1 and "standard input" in text(r)[1]
    r = run(["--recover", rid, src, "--local", "--force"], env)
    assert r.returncode == 0, text(r)[1]


def test_an_output_that_appears_during_the_job_is_kept_and_the_result_recovered(tmp_path, env):
    import flux_outpaint_fal_local

    src = tmp_path / "in.png"
    photo(96, 80).save(src)
    out = tmp_path / "out.png"
    srv = flux_outpaint_fal_local.start_server(run_seconds=1.5)

    def someone_else() -> None:  # writes the output while the job waits on fal
        while not srv.submits and not stop.is_set():
            time.sleep(0.02)
        out.write_bytes(b"someone else's file")

    stop = threading.Event()
    writer = threading.Thread(target=someone_else)
    writer.start()
    try:
        r = run([src, "--left", 16, "--base-url", srv.base_url, "-o", out], keyed(env))
        err = text(r)[1]
        (rid,) = srv.submits
        assert r.returncode == 1
        assert "appeared while the job ran" in err
        assert err.strip().splitlines()[-1].endswith(f"recover with: flux-outpaint --recover {rid}")
        assert out.read_bytes() == b"someone else's file"
        entry = journal_of(env).find(rid)
        assert entry is not None and entry.state == "unplaced"
    finally:
        stop.set()
        writer.join()
        srv.stop()
    # No id: the latest request that was never written.
    r = run(["--recover", "-o", tmp_path / "mine.png", "--local"], env)
    assert r.returncode == 0, text(r)[1]
    assert Image.open(tmp_path / "mine.png").size == (112, 80)
    # Now nothing is left unwritten: the newest written one is the latest (the rule the
    # plug-in follows too), and its output is not overwritten without --force.
    r = run(["--recover", "--local"], env)
    assert r.returncode == 1 and "exists" in text(r)[1]


def test_recover_treats_a_file_name_as_the_input(tmp_path, env, server):
    src, out, rid = first_run(tmp_path, env, server)
    journal_of(env).mark(rid, "unplaced")
    out.unlink()
    r = run(["--recover", src, "--local"], env)
    assert r.returncode == 0, text(r)[1]
    assert out.exists()


def test_recover_names_what_it_cannot_do(tmp_path, env, server):
    r = run(["--recover", "--local"], env)
    assert r.returncode == 1 and "nothing to recover" in text(r)[1].lower()
    r = run(["--recover", "0123-not-there", "--local"], env)
    assert r.returncode == 1 and "no request 0123-not-there" in text(r)[1]
    from flux_outpaint.status import RequestHandle

    journal = journal_of(env)
    root = f"{server.base_url}/fal-ai/flux-2-pro/requests/g1"
    journal.record_submit(
        RequestHandle("g1", root + "/status", root, root + "/cancel"),
        GimpLayer(image="x.xcf"),
    )
    r = run(["--recover", "g1", "--local"], env)
    assert r.returncode == 1 and "GIMP" in text(r)[1]


def test_recover_never_submits_even_when_fal_lost_the_request(tmp_path, env):
    from urllib.parse import urlsplit

    import flux_outpaint_fal_local

    first = flux_outpaint_fal_local.start_server()
    try:
        _, out, rid = first_run(tmp_path, env, first)
    finally:
        first.stop()
    shutil.rmtree(tmp_path / "data" / "results")
    out.unlink()
    # The same address, a server that knows nothing of the request (as after fal's retention).
    again = flux_outpaint_fal_local.start_server(port=urlsplit(first.base_url).port)
    try:
        r = run(["--recover", rid, "--base-url", again.base_url], keyed(env))
        assert r.returncode == 1
        assert "no longer knows" in text(r)[1]
        assert again.submits == []
        assert not out.exists()
    finally:
        again.stop()


def test_a_result_that_cannot_be_placed_is_recovered_raw(tmp_path, env):
    import flux_outpaint_fal_local

    srv = flux_outpaint_fal_local.start_server(scenarios=["wrong-size"])
    try:
        src = tmp_path / "in.png"
        photo(96, 80).save(src)
        out = tmp_path / "out.png"
        r = run([src, "--right", 48, "--base-url", srv.base_url, "-o", out], keyed(env))
        assert r.returncode == 1
        (rid,) = srv.submits
    finally:
        srv.stop()
    r = run(["--recover", "--local"], env)  # the latest unwritten one: it still cannot be placed
    assert r.returncode == 1
    assert "--raw writes fal's image as it came back" in text(r)[1]
    assert not out.exists()
    r = run(["--recover", "--raw", "--local"], env)
    _, err = text(r)
    assert r.returncode == 0, err
    written = Image.open(out)
    assert written.size != (144, 80) and written.size[1] == 80  # as fal returned it
    assert journal_of(env).find(rid).state == "placed"
    r = run(["--recover", rid, "--raw", "--local", "-o", tmp_path / "again.jpg"], env)
    assert r.returncode == 0, text(r)[1]
    assert Image.open(tmp_path / "again.jpg").format == "JPEG"


def test_raw_needs_recover(env):
    assert run(["x.png", "--left", 4, "--raw"], env).returncode == 2
