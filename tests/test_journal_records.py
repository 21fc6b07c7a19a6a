"""The record types: every kind of run round-trips; version-1 records (no "v") read as they
were written; damaged fields fall back to "unknown", never to a guess."""

from __future__ import annotations

import json

import pytest
from flux_outpaint.framing import Placement
from flux_outpaint.geometry import Expansion, Rect
from flux_outpaint.journal import Journal
from flux_outpaint.journal_records import (
    FORMAT_VERSION,
    CliFile,
    GimpLayer,
    PlanRecord,
    State,
    TakeOf,
    UnknownPurpose,
    purpose_from_json,
    record_version,
)
from flux_outpaint.status import RequestHandle

PLACEMENT = Placement(Rect(0, 0, 64, 44), Rect(16, 8, 48, 36), Expansion(1, 0, 1, 0), 16)
CLI = CliFile("/in.png", "ab" * 32, (48, 36), (16, 8), "/out.png", "PNG", 16, 90, False)
TAKE = TakeOf("0123abcd", 2, 3)
KINDS = {
    "gimp-layer": GimpLayer("3.0.4", "Untitled", "Background", PLACEMENT),
    "gimp-takes": GimpLayer("3.2.6", "img", "Layer", PLACEMENT, TAKE),
    "cli-file": CLI,
    "cli-takes": CLI.with_take(TAKE),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_of_run_round_trips_through_the_journal(tmp_path, kind):
    purpose = KINDS[kind]
    plan = PlanRecord((64, 44), (16, 8, 48, 36), (94, 64), 1.45, "png", 7829, "high", "png", 0.03)
    journal = Journal(tmp_path / "j.jsonl")
    root = "https://queue.fal.run/fal-ai/flux-2-pro/requests/r1"
    journal.record_submit(
        RequestHandle("r1", f"{root}/status", root, f"{root}/cancel"), purpose, plan
    )
    (entry,) = journal.entries()
    assert entry.purpose == purpose and entry.purpose.kind == kind
    assert entry.plan == plan and entry.take == purpose.take
    record = json.loads(journal.path.read_text())
    assert record["v"] == FORMAT_VERSION and record["purpose"]["kind"] == kind


def test_a_version_1_record_reads_as_it_was_written():
    # As 8fda900 wrote it (tests/fixtures/journal_8fda900 holds whole journals of that version)
    v1 = {
        "tool": "cli",
        "input": "/tmp/in.png",
        "input_sha256": "53" * 32,
        "input_size": [48, 36],
        "origin": [16, 8],
        "output": "/tmp/single.png",
        "output_type": "PNG",
        "quality": None,
        "seam_blend": 16,
        "color_match": True,
        "canvas": [64, 44],
        "reference": [16, 8, 48, 36],
        "request_output": [94, 64],
        "scale": 1.45,
        "encoding": "png",
        "payload_bytes": 7829,
        "options": {"mode": "high", "output_format": "png"},
        "cost_usd_estimate": 0.03,
        "run": "abc",
        "variation": 1,
        "variations": 2,
    }
    purpose = purpose_from_json(v1)
    assert isinstance(purpose, CliFile) and purpose.kind == "cli-takes"
    assert purpose.origin == (16, 8) and purpose.take == TakeOf("abc", 1, 2)
    assert PlanRecord.from_json(v1).request_output == (94, 64)
    assert record_version({"request_id": "x"}) == 1
    assert record_version({"v": 7}) == 7
    assert record_version({"v": "2"}) is None and record_version({"v": True}) is None


@pytest.mark.parametrize(
    "damaged",
    [
        {"tool": "cli", "input": "/i.png"},  # what recover needs is missing
        {"tool": "cli", **{k: 5 for k in ("input", "input_sha256", "output", "output_type")}},
        {"tool": "krita"},
        ["not", "a", "dict"],
    ],
)
def test_a_damaged_or_foreign_purpose_is_unknown(damaged):
    assert isinstance(purpose_from_json(damaged), UnknownPurpose)


def test_a_damaged_placement_is_placed_like_an_unknown_one():
    purpose = purpose_from_json({"tool": "gimp", "placement": {"rect": [1, 2]}})
    assert isinstance(purpose, GimpLayer) and purpose.placement is None


@pytest.mark.parametrize(
    "plan",
    [
        {"request_output": [28, 10]},
        {"canvas": [1, 2], "reference": [0, 0, 1, 2], "request_output": [28]},
        {"canvas": [1, 2], "reference": [0, 0, 1, 2], "request_output": ["28", 10]},
        {"canvas": [1, 2], "reference": [0, 0, 1, 2], "request_output": [True, 10]},
        {"canvas": [1, 2], "reference": [0, 0, 1, 2], "request_output": [0, 10]},
    ],
)
def test_a_plan_record_is_trusted_only_when_sane(plan):
    assert PlanRecord.from_json(plan) is None


def test_a_run_of_one_is_not_a_take():
    assert TakeOf.from_json({"run": "a", "variation": 1, "variations": 1}) is None


def test_states_parse_and_say_whether_a_result_may_exist():
    assert State.parse("placed") is State.PLACED and State.parse("odd") is State.UNKNOWN
    assert State.parse(None) is State.UNKNOWN
    assert not State.FAILED.may_have_result and not State.UNKNOWN.may_have_result
    assert State.CANCELLED.may_have_result  # cancelled after fal finished: still there
