"""Variations: N requests for one reference, each submitted once, journaled, independent."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest
from fakes import FakeFal, request_id, result, status
from flux_outpaint import errors, payload
from flux_outpaint.geometry import Expansion, from_numbers
from flux_outpaint.journal import Journal
from flux_outpaint.journal_records import GimpLayer
from flux_outpaint.pipeline import Job
from flux_outpaint.planning import make_plan
from flux_outpaint.pngcodec import encode_png
from flux_outpaint.queue_client import FalQueueClient
from flux_outpaint.status import Phase, Progress
from flux_outpaint.variations import (
    MAX_VARIATIONS,
    Take,
    failure_line,
    queue_position,
    run_variations,
    take_status,
    takes_summary,
)

BASE = "https://queue.fal.run"
KEY = "variations-key:abcdef123456"
PNG = encode_png(bytes([30, 60, 90, 255]) * 16, 4, 4, 4)  # a real (tiny) result image


def fake_fal(failing: tuple[int, ...] = (), running: bool = False) -> FakeFal:
    """fal where each submit is a new request (req-1, req-2, …); the requests numbered in
    ``failing`` end in a 500, and with ``running`` every request stays IN_PROGRESS."""

    def answer(request: httpx.Request) -> httpx.Response:
        rid = request_id(request)
        if int(rid.split("-")[1]) in failing:
            return httpx.Response(500, json={"detail": "boom", "error_type": "runner_server_error"})
        return result(rid)

    if running:
        return FakeFal(image=PNG, result=[answer], status=[status("IN_PROGRESS")])
    return FakeFal(image=PNG, result=[answer])


def client_for(fal: FakeFal) -> FalQueueClient:
    return FalQueueClient(
        BASE, KEY, transport=httpx.MockTransport(fal), use_stream=False, time_scale=0.01
    )


def job() -> Job:
    plan = make_plan(from_numbers(300, 200, Expansion(left=40)))
    w, h = plan.request_reference
    return Job(
        bytes([10, 200, 90, 255]) * (w * h), plan, payload.RequestOptions(), GimpLayer(layer="test")
    )


class CountingEncoder:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, rgba, width, height, encoding):
        self.calls += 1
        return encode_png(rgba, width, height, 4)


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "journal.jsonl")


def test_three_takes_are_three_submits_of_one_encoded_reference(journal):
    fal, encoder = fake_fal(), CountingEncoder()
    seen: dict[int, list[Phase]] = {}

    def progress(index: int, p: Progress) -> None:
        seen.setdefault(index, []).append(p.phase)

    takes = run_variations(
        job(), 3, client=client_for(fal), journal=journal, encoder=encoder, on_progress=progress
    )
    assert [t.index for t in takes] == [0, 1, 2] and all(t.ok for t in takes)
    assert sorted(t.result.request_id for t in takes) == ["req-1", "req-2", "req-3"]
    assert encoder.calls == 1 and len(set(fal.bodies())) == 1
    assert set(seen) == {0, 1, 2} and all(p[-1] is Phase.DONE for p in seen.values())
    entries = journal.entries()
    assert len(entries) == 3 and {e.state for e in entries} == {"downloaded"}
    assert len({e.take.run for e in entries}) == 1
    assert sorted(e.take.number for e in entries) == [1, 2, 3]
    assert {e.take.count for e in entries} == {3}
    assert failure_line(takes) == ""


def test_one_failing_take_leaves_the_others_and_is_named(journal):
    fal = fake_fal(failing=(2,))
    takes = run_variations(
        job(), 3, client=client_for(fal), journal=journal, encoder=CountingEncoder()
    )
    assert [t.ok for t in sorted(takes, key=lambda t: t.index)].count(True) == 2
    assert len(fal.submitted) == 3  # the failure was not retried as a new submit
    failed = [t for t in takes if not t.ok]
    assert len(failed) == 1 and failed[0].error.request_id == "req-2"
    line = failure_line(takes, (KEY,))
    assert line.startswith("1 of 3 variations failed: variation")
    assert "req-2" in line and "\n" not in line and KEY not in line


def test_cancel_cancels_every_request_in_flight_on_fal(journal):
    fal, cancel = fake_fal(running=True), threading.Event()
    running: set[int] = set()

    def progress(index: int, p: Progress) -> None:
        if p.phase is Phase.RUNNING:
            running.add(index)
            if len(running) == 3:
                cancel.set()

    takes = run_variations(
        job(),
        3,
        client=client_for(fal),
        journal=journal,
        encoder=CountingEncoder(),
        on_progress=progress,
        cancel=cancel,
    )
    assert all(isinstance(t.error, errors.CancelledError) for t in takes)
    assert sorted(fal.cancelled()) == sorted(fal.submitted) == ["req-1", "req-2", "req-3"]
    assert {e.state for e in journal.entries()} == {"cancelled"}


def test_a_cancel_before_the_start_submits_nothing(journal):
    fal, cancel = fake_fal(), threading.Event()
    cancel.set()
    takes = run_variations(
        job(), 2, client=client_for(fal), journal=journal, encoder=CountingEncoder(), cancel=cancel
    )
    assert fal.submitted == [] and all(not t.ok for t in takes)


@pytest.mark.parametrize("count", [0, MAX_VARIATIONS + 1])
def test_the_count_is_bounded(journal, count):
    with pytest.raises(ValueError):
        run_variations(
            job(), count, client=client_for(fake_fal()), journal=journal, encoder=CountingEncoder()
        )


def test_each_take_reports_how_it_ended(journal):
    """A wait window shows one row per take: a failed or cancelled one must say so last."""
    fal = fake_fal(failing=(2,))
    last: dict[int, Progress] = {}
    takes = run_variations(
        job(),
        3,
        client=client_for(fal),
        journal=journal,
        encoder=CountingEncoder(),
        on_progress=lambda i, p: last.__setitem__(i, p),
    )
    failed = next(t for t in takes if not t.ok)
    assert last[failed.index].phase is Phase.FAILED
    assert last[failed.index].request_id == "req-2"
    assert sorted(p.phase for p in last.values()).count(Phase.DONE) == 2

    cancel = threading.Event()
    cancel.set()
    ended: dict[int, Progress] = {}
    run_variations(
        job(),
        2,
        client=client_for(fake_fal()),
        journal=journal,
        encoder=CountingEncoder(),
        on_progress=lambda i, p: ended.__setitem__(i, p),
        cancel=cancel,
    )
    assert {i: p.phase for i, p in ended.items()} == {0: Phase.CANCELLED, 1: Phase.CANCELLED}


@pytest.mark.parametrize(
    "progress, text",
    [
        (None, "waiting to start"),
        (Progress(Phase.ENCODING), "sending"),
        (Progress(Phase.SUBMITTING), "sending"),
        (Progress(Phase.QUEUED), "queued"),
        # every take waits in the same queue: the window shows the position once, not per row
        (Progress(Phase.QUEUED, queue_position=0), "queued"),
        (Progress(Phase.QUEUED, queue_position=4), "queued"),
        (Progress(Phase.RUNNING, log_line="x"), "running"),
        (Progress(Phase.DOWNLOADING), "downloading"),
        (Progress(Phase.DONE), "done"),
        (Progress(Phase.FAILED), "failed"),
        (Progress(Phase.CANCELLED), "cancelled"),
    ],
)
def test_take_status_names_every_phase(progress, text):
    assert take_status(progress) == text


def _failed(index: int, text: str, rid: str | None) -> Take:
    return Take(index, error=errors.OutpaintError(text, request_id=rid))


UUIDS = [f"{n:08x}-6bea-4e31-a181-6f6c06ead56a" for n in range(4)]
LONG = "fal could not run the job (HTTP 500, runner_server_error): Internal Server Error"


def test_failures_with_one_reason_share_it_and_name_every_request():
    takes = [_failed(i, LONG, UUIDS[i]) for i in range(3)]
    line = failure_line(takes)
    assert line == (
        f"3 of 3 variations failed: variations 1, 2, 3 (requests {', '.join(UUIDS[:3])}): {LONG}"
    )


@pytest.mark.parametrize("count", [2, 3, 4])
def test_every_failed_request_survives_the_one_line_cap(count):
    takes = [_failed(i, f"reason {i}: " + "x" * 200, UUIDS[i]) for i in range(count)]
    shown = errors.one_line(failure_line(takes))  # what a person gets to see
    assert all(rid in shown for rid in UUIDS[:count]), shown
    assert all(f"reason {i}" in shown for i in range(count)), shown
    assert len(shown) <= errors.MAX_MESSAGE


def test_a_take_that_failed_before_its_submit_has_no_request_to_name():
    takes = [
        Take(0, result=None),
        _failed(1, "Could not reach fal", None),
        _failed(2, "Cancelled", "req-3"),
    ]
    line = failure_line(takes, what="not recovered")
    assert line == (
        "2 of 3 variations could not be recovered: variation 2: Could not reach fal; "
        "variation 3 (request req-3): Cancelled"
    )


def test_queue_position_is_the_first_take_in_line_counted_from_one():
    assert queue_position({}) is None
    assert queue_position({0: Progress(Phase.RUNNING)}) is None
    progress = {
        0: Progress(Phase.QUEUED, queue_position=3),
        1: Progress(Phase.QUEUED, queue_position=1),
        2: Progress(Phase.QUEUED),  # no position reported
        3: Progress(Phase.RUNNING),
    }
    assert queue_position(progress) == 2


def test_takes_summary_counts_each_state_in_order():
    progress = {
        0: Progress(Phase.RUNNING),
        1: Progress(Phase.QUEUED, queue_position=3),
        2: Progress(Phase.RUNNING),
        4: Progress(Phase.FAILED),
    }
    assert takes_summary(progress, 5) == (
        "5 variations: 1 waiting to start, 1 queued, 2 running, 1 failed"
    )
    assert takes_summary({}, 2) == "2 variations: 2 waiting to start"
    assert takes_summary({0: Progress(Phase.DONE), 1: Progress(Phase.CANCELLED)}, 2) == (
        "2 variations: 1 done, 1 cancelled"
    )
