"""Journals and result caches written by 8fda900 (tests/fixtures/journal_8fda900, made by
running that commit: see make_cli.py there) recovered by today's CLI: the same pixels in the
same files, and never a submit.

The fixture's paths start with the folder it was made in; each test copies it and replaces
that prefix with its own folder (the files themselves are byte for byte as 8fda900 wrote
them).  The request killed while queued has no cached result: its journal names the server
that took it, so that address is replaced by a loopback server that answers only what fal
would for a finished request (status, result, image) and counts any submit.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_support import keyed, make_env, run, text
from flux_outpaint.journal import Journal
from flux_outpaint.journal_records import CliFile, State
from PIL import Image
from replay_server import Replay

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "journal_8fda900"


@pytest.fixture
def old_cli(tmp_path):
    """The CLI fixture in ``tmp_path/cli``, its paths and its server address made ours."""
    runs = json.loads((FIXTURES / "cli" / "runs.json").read_text())
    here = tmp_path / "cli"
    shutil.copytree(FIXTURES / "cli", here)
    server_dir = here / "server"
    replay = Replay({p.stem: p.read_bytes() for p in server_dir.iterdir()})
    journal = here / "data" / "journal.jsonl"
    raw = journal.read_text()
    raw = raw.replace(runs["prefix"], str(here))
    raw = raw.replace(runs["killed"]["base_url"], replay.base_url)
    journal.write_text(raw)
    env = keyed(
        {
            **make_env(tmp_path),
            "FLUX_OUTPAINT_DATA_DIR": str(here / "data"),
        }
    )
    try:
        yield here, runs, env, replay
    finally:
        replay.stop()


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGBA"))


def test_the_old_journal_reads_as_typed_entries(old_cli):
    here, runs, _, _ = old_cli
    entries = {e.request_id: e for e in Journal(here / "data" / "journal.jsonl").entries()}
    (single,) = runs["single"]["ids"]
    assert entries[single].purpose.kind == "cli-file" and entries[single].state is State.PLACED
    kinds = {entries[rid].purpose.kind for rid in runs["takes"]["ids"]}
    assert kinds == {"cli-takes"}
    (killed,) = runs["killed"]["ids"]
    assert entries[killed].state is State.SUBMITTED and entries[killed].handle is not None
    assert all(isinstance(e.purpose, CliFile) for e in entries.values())


@pytest.mark.parametrize("run_name", ["single", "takes", "killed"])
def test_every_old_run_comes_back_with_the_same_pixels_and_no_submit(old_cli, run_name):
    here, runs, env, replay = old_cli
    ids = runs[run_name]["ids"]
    journal = Journal(here / "data" / "journal.jsonl")
    for rid in ids:
        entry = journal.find(rid)
        # where 8fda900 wrote (or was to write) it: the output its own recover chose
        wanted = Path(entry.output or entry.purpose.output_of_take())
        assert not wanted.exists()
        args = ["--recover", rid, "--base-url", replay.base_url]
        r = run(args, env)
        assert r.returncode == 0, text(r)[1]
        expected = here / "expected" / wanted.name
        assert np.array_equal(pixels(wanted), pixels(expected)), wanted.name
    assert replay.posts == []  # never a submit, never a cancel
    fetched = [g for g in replay.gets if g.startswith("/files/")]
    assert fetched == ([f"/files/{ids[0]}"] if run_name == "killed" else [])


def test_without_an_id_the_killed_request_is_the_one_recovered(old_cli):
    here, runs, env, replay = old_cli
    r = run(["--recover", "--base-url", replay.base_url], env)
    assert r.returncode == 0, text(r)[1]
    out = here / "killed.png"
    assert np.array_equal(pixels(out), pixels(here / "expected" / "killed.png"))
    (killed,) = runs["killed"]["ids"]
    assert Journal(here / "data" / "journal.jsonl").find(killed).state is State.PLACED
    assert replay.posts == []


def test_the_killed_request_asked_of_another_server_names_the_one_that_took_it(old_cli):
    here, runs, env, replay = old_cli
    (killed,) = runs["killed"]["ids"]
    r = run(["--recover", killed, "--base-url", "http://127.0.0.1:9"], env)
    out, err = text(r)
    assert r.returncode == 1
    assert f"made on {replay.base_url}" in err and "401" not in err
    assert err.strip().splitlines()[-1].startswith(f"Request {killed} was made on")
    assert replay.gets == [] and not (here / "killed.png").exists()
