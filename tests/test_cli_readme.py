"""Every command-line example in the README runs verbatim: in a directory laid out like a
fresh checkout (the README's photo, scripts/, plugin/ and .venv/), against the local
server through FAL_QUEUE_URL, each line through bash as a person would type it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import ROOT, keyed, make_env
from flux_outpaint.journal import Journal
from PIL import Image

pytestmark = [pytest.mark.server, pytest.mark.slow]

SECTION = "## Command line (no GIMP)"
# The install lines need the network (pip); the test's own environment was made the same
# way (`pip install -e .[test]`, a superset of `[cli]`), and activation is PATH, set below.
INSTALL = ("python3 -m venv ", ". .venv/bin/activate")


def examples() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    lines = [ln.strip() for block in blocks for ln in block.splitlines() if ln.strip()]
    return [ln for ln in lines if not ln.startswith(INSTALL)]


def test_the_readme_has_examples_of_every_kind():
    lines = examples()
    joined = "\n".join(lines)
    for needle in (
        "--aspect 16:9",
        "--dry-run",
        "--recover",
        "-o -",
        "--local",
        "--out-dir",
        "--variations",
    ):
        assert needle in joined
    assert sum(ln.startswith("flux-outpaint") for ln in lines) >= 6


def test_every_readme_example_runs_verbatim(tmp_path, server):
    clone = tmp_path / "clone"
    (clone / "docs" / "images").mkdir(parents=True)
    for name in ("before.png", "after.png", "dialog.png"):
        shutil.copy(ROOT / "docs" / "images" / name, clone / "docs" / "images" / name)
    for name in ("scripts", "plugin"):
        (clone / name).symlink_to(ROOT / name)
    venv = Path(sys.executable).parent.parent
    (clone / ".venv").symlink_to(venv)
    env = keyed(make_env(tmp_path))
    env["FAL_QUEUE_URL"] = server.base_url
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    journal = Journal(Path(env["FLUX_OUTPAINT_DATA_DIR"]) / "journal.jsonl")
    for line in examples():
        if line.startswith("flux-outpaint --recover"):
            # Something to recover: the newest request from a file to a file, as if writing
            # its output had failed.
            latest = [
                e for e in journal.entries() if "-" not in (e.purpose.input, e.purpose.output)
            ][-1]
            Path(latest.output or latest.purpose.output_of_take()).unlink()
            journal.mark(latest.request_id, "unplaced")
        done = subprocess.run(["bash", "-c", line], cwd=clone, env=env, capture_output=True)
        assert done.returncode == 0, (line, done.stderr.decode(errors="replace"))
    assert Image.open(clone / "docs" / "images" / "before-outpaint.png").size == (900, 400)
    assert Image.open(clone / "wide.jpg").format == "JPEG"
    assert len(list((clone / "tall").iterdir())) >= 3
    assert Image.open(clone / "taller.png").size == (600, 528)
    assert Image.open(clone / "offline.png").size == (600, 656)
    takes = sorted((clone / "docs" / "images").glob("before-outpaint-*.png"))
    assert [t.name for t in takes] == [f"before-outpaint-{n}.png" for n in (1, 2, 3)]
