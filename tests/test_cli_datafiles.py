"""Files in the data folder that are not what they should be: a journal that is a symbolic
link is never written through (nothing is sent), and a cached result linked to a device is
never read (recover fetches the result again instead)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from cli_support import keyed, photo, run, text
from flux_outpaint.journal import Journal

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(sys.platform == "win32", reason="symbolic links and /dev/zero"),
]


def test_a_symlinked_journal_is_refused_before_anything_is_sent(tmp_path, env, server):
    data = Path(env["FLUX_OUTPAINT_DATA_DIR"])
    data.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("mine\n")
    (data / "journal.jsonl").symlink_to(elsewhere)
    src = tmp_path / "in.png"
    photo(64, 48).save(src)
    r = run([src, "--left", 16, "--base-url", server.base_url], keyed(env))
    _, err = text(r)
    assert r.returncode == 1
    assert "Cannot write the journal" in err and "nothing was sent" in err
    assert server.submits == []
    assert elsewhere.read_text() == "mine\n"


def test_a_cached_result_linked_to_dev_zero_is_fetched_again_not_read(tmp_path, env, server):
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    photo(64, 48).save(src)
    r = run([src, "--left", 16, "--base-url", server.base_url, "-o", out], keyed(env))
    assert r.returncode == 0, text(r)[1]
    (rid,) = server.submits
    first = out.read_bytes()
    out.unlink()
    cached = Path(env["FLUX_OUTPAINT_DATA_DIR"]) / "results" / f"{rid}.png"
    cached.unlink()
    os.symlink("/dev/zero", cached)
    r = run(["--recover", rid, "--base-url", server.base_url], keyed(env))
    assert r.returncode == 0, text(r)[1]
    assert out.read_bytes() == first
    assert server.submits == [rid]
    assert not cached.is_symlink()  # replaced by the fetched result, not written through
    journal = Journal(Path(env["FLUX_OUTPAINT_DATA_DIR"]) / "journal.jsonl")
    assert journal.find(rid).state == "placed"
