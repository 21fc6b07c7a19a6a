"""One job end to end against scripted fal answers: progress, the journal, errors naming the
request (recovering a paid result: test_recovery.py)."""

from __future__ import annotations

import errno
import re
import shutil
import threading
import zlib
from pathlib import Path

import httpx
import pytest
from fakes import FakeFal, Reply, status
from flux_outpaint import errors, payload
from flux_outpaint.geometry import Expansion, from_numbers
from flux_outpaint.imageinfo import check_header
from flux_outpaint.journal import Journal
from flux_outpaint.journal_records import GimpLayer, Purpose
from flux_outpaint.pipeline import InFlight, Job, run_job
from flux_outpaint.planning import make_plan
from flux_outpaint.pngcodec import encode_png
from flux_outpaint.queue_client import FalQueueClient
from flux_outpaint.status import Phase, Progress, RequestHandle

BASE = "https://queue.fal.run"
KEY = "pipeline-test-key:abcdef123456"
PNG = encode_png(bytes(range(28)) * 4 * 10, 28, 10, 4)  # the shape of job()s output
# A header claiming 12000×9600 (nothing behind it): more than any outpaint result.
_IHDR = b"IHDR" + (12000).to_bytes(4, "big") + (9600).to_bytes(4, "big") + PNG[24:29]
HEADER_LIE = PNG[:12] + _IHDR + (zlib.crc32(_IHDR) & 0xFFFFFFFF).to_bytes(4, "big")
RID = "3f0c9d2e-1111-4c55-9c39-8f0d2a3b9e11"


def handle(rid: str) -> RequestHandle:
    root = f"{BASE}/fal-ai/flux-2-pro/requests/{rid}"
    return RequestHandle(rid, f"{root}/status", root, f"{root}/cancel")


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "data" / "journal.jsonl")


def fake_fal(image: bytes = PNG, **routes: list[Reply]) -> FakeFal:
    """fal that answers a submit as request RID and serves ``image`` as its result."""
    return FakeFal(ids=[RID], image=image, **routes)


def client_for(fal: FakeFal) -> FalQueueClient:
    return FalQueueClient(BASE, KEY, transport=httpx.MockTransport(fal), use_stream=False)


def job(purpose: Purpose | None = None) -> Job:
    plan = make_plan(from_numbers(20, 10, Expansion(left=8)))
    w, h = plan.request_reference
    return Job(
        bytes([90, 120, 200, 255]) * (w * h),
        plan,
        payload.RequestOptions(),
        purpose or GimpLayer(layer="test"),
    )


def encoder(rgba: bytes, width: int, height: int, encoding: payload.Encoding) -> bytes:
    return encode_png(rgba, width, height, 4)


# -- run_job -------------------------------------------------------------------------------


def test_a_job_reports_each_phase_in_order_and_journals_the_request(journal):
    fal = fake_fal(
        status=[
            status("IN_QUEUE", queue_position=1),
            status("IN_PROGRESS", logs=[{"message": "step", "timestamp": "1"}]),
            status("COMPLETED"),
        ]
    )
    seen: list[Progress] = []
    the_job = job()
    result = run_job(
        the_job, client=client_for(fal), journal=journal, encoder=encoder, on_progress=seen.append
    )
    assert (result.request_id, result.data, result.content_type) == (RID, PNG, "image/png")
    phases = [p.phase for p in seen]
    assert phases[:3] == [Phase.ENCODING, Phase.SUBMITTING, Phase.QUEUED]
    assert phases[-2:] == [Phase.DOWNLOADING, Phase.DONE]
    assert (Phase.QUEUED, 1) in [(p.phase, p.queue_position) for p in seen]
    assert "step" in [p.log_line for p in seen if p.phase is Phase.RUNNING]
    assert all(p.request_id is None for p in seen[:2]) and seen[-1].request_id == RID
    assert fal.count("submit") == 1
    entry = journal.find(RID)
    assert entry.state == "downloaded" and Path(entry.result_path).read_bytes() == PNG
    assert entry.purpose == GimpLayer(layer="test") and entry.purpose.kind == "gimp-layer"
    assert entry.expected_output == the_job.plan.request_output
    assert entry.plan is not None and entry.plan.canvas == (28, 10)


def test_a_failure_after_the_submit_names_the_request_and_is_journaled(journal):
    detail = [{"loc": ["body", "expand_left"], "msg": "bad", "type": "value_error"}]
    fal = fake_fal(result=[httpx.Response(422, json={"detail": detail})])
    with pytest.raises(errors.ValidationError) as info:
        run_job(job(), client=client_for(fal), journal=journal, encoder=encoder)
    assert info.value.request_id == RID
    assert RID in errors.user_message(info.value)
    assert journal.find(RID).state == "failed"
    assert fal.count("submit") == 1


def test_a_cancel_before_the_submit_sends_nothing(journal):
    cancel = threading.Event()
    cancel.set()
    fal = fake_fal()
    with pytest.raises(errors.CancelledError) as info:
        run_job(job(), client=client_for(fal), journal=journal, encoder=encoder, cancel=cancel)
    assert info.value.request_id is None
    assert fal.requests == [] and journal.entries() == []


def test_a_cancel_while_waiting_cancels_on_fal_and_marks_the_journal(journal):
    cancel = threading.Event()
    fal = fake_fal(status=[status("IN_PROGRESS")])

    def progress(p: Progress) -> None:
        if p.phase is Phase.RUNNING:
            cancel.set()

    with pytest.raises(errors.CancelledError) as info:
        run_job(
            job(),
            client=client_for(fal),
            journal=journal,
            encoder=encoder,
            on_progress=progress,
            cancel=cancel,
        )
    assert info.value.request_id == RID
    assert fal.count("cancel") == 1
    assert journal.find(RID).state == "cancelled"


def test_about_request_names_only_errors_that_name_none():
    with pytest.raises(errors.ResultError) as info, errors.about_request("r1"):
        raise errors.ResultError("broken")
    assert info.value.request_id == "r1"
    with pytest.raises(errors.ResultError) as info, errors.about_request("r1"):
        raise errors.ResultError("broken", request_id="r0")
    assert info.value.request_id == "r0"
    with pytest.raises(KeyError), errors.about_request("r1"):
        raise KeyError("not ours")


# -- paid requests are never lost; every failure after the submit names the request --------


def test_an_unwritable_journal_stops_the_job_before_anything_is_sent(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    fal = fake_fal()
    with pytest.raises(errors.StorageError, match="nothing was sent") as info:
        run_job(
            job(),
            client=client_for(fal),
            journal=Journal(blocker / "data" / "journal.jsonl"),
            encoder=encoder,
        )
    assert fal.requests == [] and info.value.request_id is None


def test_a_disk_without_room_for_the_result_stops_the_job_before_anything_is_sent(
    journal, monkeypatch
):
    real = shutil.disk_usage(journal.path.parent.parent)
    monkeypatch.setattr(
        "flux_outpaint.journal.shutil.disk_usage", lambda p: real._replace(free=512 * 1024)
    )
    fal = fake_fal()
    with pytest.raises(errors.StorageError, match="Not enough free space"):
        run_job(job(), client=client_for(fal), journal=journal, encoder=encoder)
    assert fal.requests == []


def test_a_journal_that_fails_after_the_submit_cancels_the_request_and_names_it(
    journal, monkeypatch
):
    def full(self, handle, purpose=None, plan=None):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Journal, "record_submit", full)
    fal = fake_fal(status=[status("IN_PROGRESS")])
    with pytest.raises(errors.StorageError) as info:
        run_job(job(), client=client_for(fal), journal=journal, encoder=encoder)
    assert info.value.request_id == RID
    assert "No space left on device" in str(info.value) and "cancelled on fal" in str(info.value)
    assert RID in errors.user_message(info.value)
    assert fal.count("submit") == 1 and fal.count("cancel") == 1
    assert fal.count("status") == 0  # nothing waited on a request it could not keep


@pytest.mark.parametrize(
    ("image", "url", "needle"),
    [
        (PNG[: len(PNG) // 2], "https://v3b.fal.media/o.png", "truncated"),
        (HEADER_LIE, "https://v3b.fal.media/o.png", "12000×9600"),
        (PNG, "https://[::1", "malformed result URL"),
        (b"<html>", "https://v3b.fal.media/o.png", "not a PNG or JPEG"),
    ],
    ids=["truncated", "size-lie", "bad-url", "not-an-image"],
)
def test_a_bad_result_names_the_request_is_journaled_and_is_never_cached(
    journal, image, url, needle
):
    fal = fake_fal(image, result=[httpx.Response(200, json={"images": [{"url": url}]})])
    with pytest.raises(errors.ResultError, match=re.escape(needle)) as info:
        run_job(job(), client=client_for(fal), journal=journal, encoder=encoder)
    assert info.value.request_id == RID and RID in errors.user_message(info.value)
    entry = journal.find(RID)
    assert entry.state == "failed" and needle in entry.error
    assert journal.cached_result(RID) is None


def test_an_unexpected_failure_after_the_submit_still_names_the_request(journal, monkeypatch):
    def broken(self, result_json, **kw):
        raise ValueError("something odd")

    monkeypatch.setattr(FalQueueClient, "download", broken)
    with pytest.raises(errors.OutpaintError, match="ValueError") as info:
        run_job(job(), client=client_for(fake_fal()), journal=journal, encoder=encoder)
    assert info.value.request_id == RID
    assert journal.find(RID).state == "failed"


def test_in_flight_lists_a_request_while_it_runs_and_forgets_it_after(journal):
    in_flight = InFlight()
    seen: list[list[str]] = []
    fal = fake_fal(status=[status("IN_PROGRESS"), status("COMPLETED")])
    run_job(
        job(),
        client=client_for(fal),
        journal=journal,
        encoder=encoder,
        on_progress=lambda p: seen.append(in_flight.ids()),
        in_flight=in_flight,
    )
    assert seen[0] == [] and [RID] in seen
    assert in_flight.ids() == [] and len(in_flight) == 0


def test_a_cancel_after_completion_keeps_the_request_recoverable(journal):
    cancel = threading.Event()

    def progress(p: Progress) -> None:
        if p.phase is Phase.DOWNLOADING:
            cancel.set()

    with pytest.raises(errors.CancelledError, match="already finished") as info:
        run_job(
            job(),
            client=client_for(fake_fal()),
            journal=journal,
            encoder=encoder,
            on_progress=progress,
            cancel=cancel,
        )
    assert info.value.request_id == RID
    assert journal.find(RID).state == "cancelled"


def test_journal_lines_never_hold_the_key_or_its_halves(journal):
    secret_half = KEY.split(":")[1]
    fal = fake_fal(
        result=[httpx.Response(500, json={"detail": f"failed for {secret_half}\x1b]0;x\x07"})]
    )
    with pytest.raises(errors.ServerError):
        run_job(job(), client=client_for(fal), journal=journal, encoder=encoder)
    text = journal.path.read_text()
    assert secret_half not in text and "\x1b" not in text and "\\u001b" not in text


def test_a_whole_result_of_the_wrong_size_is_kept_for_the_caller_to_refuse(journal):
    # Paid for and whole: cached and handed back; placing it is what the caller refuses.
    wrong = encode_png(bytes(20 * 10 * 4), 20, 10, 4)
    fal = fake_fal(wrong)
    result = run_job(job(), client=client_for(fal), journal=journal, encoder=encoder)
    assert result.data == wrong and journal.cached_result(RID) == (wrong, "image/png")
    with pytest.raises(errors.ResultError, match="fal returned 20×10 instead of"):
        check_header(result.data, job().plan.request_output)
    assert journal.find(RID).expected_output == job().plan.request_output
