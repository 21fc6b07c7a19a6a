"""Journals written by 8fda900's plug-in, in real GIMP 3.0 and 3.2, recovered by today's.

tests/fixtures/journal_8fda900/gimp3.0 and gimp3.2 were made by running 8fda900's plug-in in
these GIMPs (make_gimp.py there): a single run, a run of two takes, and a run killed (SIGKILL,
as the status-bar Cancel does) while its request was queued.  Both journals and result caches
go into one profile — as if GIMP 3.0 and 3.2 had shared the user's data folder — and every
request is recovered by id on a fresh source image.  What 8fda900's own recover placed (the
canvas, each layer's rectangle, its pixels and mask as digests) must come out the same.  The
killed requests have no cached result: their journal names the server that took them, which
is replaced by a loopback server answering for finished requests only (and counting any
submit).  Without an id, the newest request that was never placed comes back.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from replay_server import Replay

from .harness import KEY, files_containing, run, server_env
from .sandbox import GimpSession

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "journal_8fda900"
MADE_IN = ("gimp3.0", "gimp3.2")


def _cases() -> tuple[list[list[str]], dict[str, dict], dict[str, bytes], dict[str, str]]:
    cases, expected, images, servers = [], {}, {}, {}
    for made in MADE_IN:
        runs = json.loads((FIXTURES / made / "runs.json").read_text())
        for name in ("single", "takes", "killed"):
            label = f"{made}/{name}"
            cases.append([label, runs[name]["ids"][-1]])  # the last take: the run comes back
            expected[label] = runs[name]["recovered"]
        for image in (FIXTURES / made / "server").iterdir():
            images[image.stem] = image.read_bytes()
        servers[made] = next(
            json.loads(line)["handle"]["status_url"].split("/fal-ai/")[0]
            for line in (FIXTURES / made / "killed" / "journal.jsonl").read_text().splitlines()
            if json.loads(line)["request_id"] == runs["killed"]["ids"][0]
        )
    return cases, expected, images, servers


@pytest.fixture
def outcome(gimp: GimpSession):
    cases, expected, images, servers = _cases()
    data = gimp.host_home / ".local" / "share" / "flux-outpaint"
    (data / "results").mkdir(parents=True)
    replay = Replay(images)
    try:
        lines = []
        for made in MADE_IN:
            text = (FIXTURES / made / "killed" / "journal.jsonl").read_text()
            lines.append(text.replace(servers[made], replay.base_url))
            for result in (FIXTURES / made / "killed" / "results").iterdir():
                shutil.copy(result, data / "results" / result.name)
        (data / "journal.jsonl").write_text("".join(lines))
        gimp.install_plugin()
        newest_unplaced = cases[-1][1]  # gimp3.2's killed request: the last one journaled
        params = {"cases": [*cases, ["latest", None]]}
        report = run(
            gimp, "journal_fixtures", params, server_env(None, FAL_QUEUE_URL=replay.base_url)
        )
        leaks = files_containing(gimp.host_profile, KEY) + files_containing(data, KEY)
        yield report, expected, replay, newest_unplaced, leaks
    finally:
        replay.stop()


def named_as_today(recovered: dict) -> dict:
    """8fda900 named takes "Outpaint 1"…; they are "#1 Outpaint"… now (readable at the
    Layers dock's default width).  Names only: canvas, rectangles, pixels and masks stay."""
    layers = []
    for layer in recovered.get("layers", []):
        match = re.fullmatch(r"Outpaint (\d+)", layer.get("name", ""))
        layers.append({**layer, "name": f"#{match[1]} Outpaint"} if match else layer)
    return {**recovered, "layers": layers} if "layers" in recovered else recovered


def test_every_run_8fda900_journaled_comes_back_as_it_placed_it(outcome):
    report, expected, replay, _, leaks = outcome
    for label, want in expected.items():
        got = report["cases"][label]
        assert got["ok"], (label, got)
        # same canvas, rectangles, pixels and masks
        assert got["recovered"] == named_as_today(want), label
    assert replay.posts == []  # never a submit
    fetched = sorted(g for g in replay.gets if g.startswith("/files/"))
    assert len(fetched) == 2  # only the two killed requests were not cached
    assert leaks == []


def test_without_an_id_the_newest_unplaced_request_comes_back(outcome):
    report, expected, _, newest, _ = outcome
    latest = report["cases"]["latest"]
    assert latest["ok"], latest
    assert latest["recovered"] == named_as_today(expected["gimp3.2/killed"])
    assert report["states"][newest] == "placed"
