"""A closed or broken stdout or stderr never costs a paid result: the run writes its output
and its journal; what it would have shown on the dead stream is dropped.  The CLI runs as a
process here (the streams are the process's own), against the local server on loopback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import flux_outpaint_fal_local
import pytest
from cli_support import CLI, keyed, photo
from flux_outpaint.journal import Journal

pytestmark = pytest.mark.server


@pytest.mark.parametrize("keep_lines", [0, 3])
def test_stderr_closed_by_its_reader_mid_run_still_writes_the_output(tmp_path, env, keep_lines):
    # flux-outpaint in.png … 2>&1 >/dev/null | head -3: the pipe closes while fal works
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    photo(96, 64).save(src)
    server = flux_outpaint_fal_local.start_server(queue_seconds=1.0, run_seconds=0.5)
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(CLI),
                src,
                "--left",
                "32",
                "--base-url",
                server.base_url,
                "-o",
                out,
            ],
            env=keyed(env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert proc.stderr is not None
        for _ in range(keep_lines):
            proc.stderr.readline()
        proc.stderr.close()  # the reader is gone: every later write is EPIPE
        assert proc.wait(timeout=120) == 0
        (rid,) = server.submits
    finally:
        server.stop()
    assert out.exists()
    entry = Journal(Path(env["FLUX_OUTPAINT_DATA_DIR"]) / "journal.jsonl").find(rid)
    assert entry is not None and entry.state == "placed"


def test_a_closed_stdout_still_writes_the_output_and_the_journal(tmp_path, env, server):
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    photo(96, 64).save(src)
    cmd = [
        sys.executable,
        str(CLI),
        str(src),
        "--left",
        "32",
        "--base-url",
        server.base_url,
        "-o",
        str(out),
        "--json",
    ]
    # bash closes descriptors 1 and 2 for the process (>&- 2>&-)
    line = " ".join(f"'{c}'" for c in cmd) + " >&- 2>&-"
    done = subprocess.run(["bash", "-c", line], env=keyed(env), timeout=120)
    assert done.returncode == 0
    (rid,) = server.submits
    assert out.exists()
    assert (
        Journal(Path(env["FLUX_OUTPAINT_DATA_DIR"]) / "journal.jsonl").find(rid).state == "placed"
    )


def test_an_image_for_a_closed_stdout_fails_and_stays_recoverable(tmp_path, env, server):
    src = tmp_path / "in.png"
    photo(96, 64).save(src)
    cmd = [sys.executable, str(CLI), str(src), "--left", "32", "--base-url", server.base_url]
    line = " ".join(f"'{c}'" for c in cmd) + " -o - >&-"
    done = subprocess.run(["bash", "-c", line], env=keyed(env), capture_output=True, timeout=120)
    assert done.returncode == 1
    (rid,) = server.submits
    assert done.stderr.decode().strip().splitlines()[-1].endswith(f"--recover {rid}")
    journal = Journal(Path(env["FLUX_OUTPAINT_DATA_DIR"]) / "journal.jsonl")
    assert journal.find(rid).state == "unplaced"
