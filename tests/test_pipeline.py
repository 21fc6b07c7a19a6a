"""One job end to end against scripted fal answers: progress, the journal, errors naming the
request, and ``recover`` (cache first, fetched by id otherwise, never a submit)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import httpx
import pytest
from outpaint import errors, payload
from outpaint.geometry import Expansion, from_numbers
from outpaint.journal import Journal
from outpaint.pipeline import Job, recover, run_job
from outpaint.planning import make_plan
from outpaint.pngcodec import encode_png
from outpaint.queue_client import FalQueueClient
from outpaint.status import Phase, Progress, RequestHandle

BASE = "https://queue.fal.run"
KEY = "pipeline-test-key:abcdef123456"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 32
RID = "3f0c9d2e-1111-4c55-9c39-8f0d2a3b9e11"


def handle(rid: str) -> RequestHandle:
    root = f"{BASE}/fal-ai/flux-2-pro/requests/{rid}"
    return RequestHandle(rid, f"{root}/status", root, f"{root}/cancel")


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "data" / "journal.jsonl")


class Fal:
    """fal's queue in a few lines: a submit, a scripted list of statuses, a result, an image."""

    def __init__(
        self,
        state: str = "COMPLETED",
        result: dict | None = None,
        statuses: list[dict] | None = None,
        image: bytes = PNG,
        result_status: int = 200,
    ) -> None:
        self.state = state
        self.result = result or {"images": [{"url": "https://v3b.fal.media/o.png"}]}
        self.statuses = list(statuses or [])
        self.image, self.result_status = image, result_status
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if request.method == "POST":
            if path.endswith("/outpaint"):
                h = handle(RID)
                return httpx.Response(
                    200,
                    json={
                        "request_id": RID,
                        "status": "IN_QUEUE",
                        "queue_position": 0,
                        "status_url": h.status_url,
                        "response_url": h.response_url,
                        "cancel_url": h.cancel_url,
                    },
                )
            return httpx.Response(500)
        if path.endswith("/status"):
            if self.statuses:
                body = self.statuses.pop(0)
                return httpx.Response(200 if body["status"] == "COMPLETED" else 202, json=body)
            code = 200 if self.state == "COMPLETED" else 202
            return httpx.Response(code, json={"status": self.state, "logs": []})
        if path.endswith("/cancel"):
            return httpx.Response(202, json={"status": "CANCELLATION_REQUESTED"})
        if request.url.host == "v3b.fal.media":
            return httpx.Response(200, headers={"content-type": "image/png"}, content=self.image)
        return httpx.Response(self.result_status, json=self.result)

    def count(self, method: str, suffix: str = "") -> int:
        return sum(1 for r in self.requests if r.method == method and r.url.path.endswith(suffix))


def client_for(fal: Fal) -> FalQueueClient:
    return FalQueueClient(BASE, KEY, transport=httpx.MockTransport(fal), use_stream=False)


def job(purpose: dict | None = None) -> Job:
    plan = make_plan(from_numbers(20, 10, Expansion(left=8)))
    w, h = plan.request_reference
    return Job(
        bytes([90, 120, 200, 255]) * (w * h),
        plan,
        payload.RequestOptions(),
        purpose or {"tool": "test"},
    )


def encoder(rgba: bytes, width: int, height: int, encoding: payload.Encoding) -> bytes:
    return encode_png(rgba, width, height, 4)


# -- run_job -------------------------------------------------------------------------------


def test_a_job_reports_each_phase_in_order_and_journals_the_request(journal):
    fal = Fal(
        statuses=[
            {"status": "IN_QUEUE", "queue_position": 1},
            {"status": "IN_PROGRESS", "logs": [{"message": "step", "timestamp": "1"}]},
            {"status": "COMPLETED", "logs": []},
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
    assert fal.count("POST", "/outpaint") == 1
    entry = journal.find(RID)
    assert entry.state == "downloaded" and Path(entry.result_path).read_bytes() == PNG
    assert entry.purpose["tool"] == "test"
    assert entry.purpose["request_output"] == list(the_job.plan.request_output)


def test_a_failure_after_the_submit_names_the_request_and_is_journaled(journal):
    fal = Fal(
        result={"detail": [{"loc": ["body", "expand_left"], "msg": "bad", "type": "value_error"}]},
        result_status=422,
    )
    with pytest.raises(errors.ValidationError) as info:
        run_job(job(), client=client_for(fal), journal=journal, encoder=encoder)
    assert info.value.request_id == RID
    assert RID in errors.user_message(info.value)
    assert journal.find(RID).state == "failed"
    assert fal.count("POST", "/outpaint") == 1


def test_a_cancel_before_the_submit_sends_nothing(journal):
    cancel = threading.Event()
    cancel.set()
    fal = Fal()
    with pytest.raises(errors.CancelledError) as info:
        run_job(job(), client=client_for(fal), journal=journal, encoder=encoder, cancel=cancel)
    assert info.value.request_id is None
    assert fal.requests == [] and journal.entries() == []


def test_a_cancel_while_waiting_cancels_on_fal_and_marks_the_journal(journal):
    cancel = threading.Event()
    fal = Fal(state="IN_PROGRESS")

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
    assert fal.count("PUT", "/cancel") == 1
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


# -- recover -------------------------------------------------------------------------------


def test_recover_fetches_a_completed_request_without_submitting(journal):
    journal.record_submit(handle("r1"), {})
    journal.mark("r1", "failed", error="connection lost while waiting")
    fal = Fal()
    assert recover("r1", client_for(fal), journal) == (PNG, "image/png")
    assert [r.method for r in fal.requests] == ["GET", "GET", "GET"]
    assert str(fal.requests[0].url).startswith(handle("r1").status_url)
    entry = journal.find("r1")
    assert entry.state == "downloaded" and Path(entry.result_path).read_bytes() == PNG


def test_recover_uses_the_cache_first(journal):
    journal.store_result("r1", PNG, "image/png")
    fal = Fal()
    assert recover("r1", client_for(fal), journal) == (PNG, "image/png")
    assert fal.requests == []


def test_recover_an_id_the_journal_never_saw(journal):
    fal = Fal()
    assert recover("r9", client_for(fal), journal)[0] == PNG
    assert fal.requests[0].url.path == "/fal-ai/flux-2-pro/requests/r9/status"


@pytest.mark.parametrize(("state", "word"), [("IN_PROGRESS", "running"), ("IN_QUEUE", "queued")])
def test_recover_of_an_unfinished_request_says_so(journal, state, word):
    fal = Fal(state=state)
    with pytest.raises(errors.ResultUnavailableError, match=f"still {word}") as info:
        recover("r1", client_for(fal), journal)
    assert info.value.request_id == "r1"
    assert len(fal.requests) == 1


def test_recover_reports_the_models_error(journal):
    class Failed(Fal):
        def __call__(self, request):
            if request.url.path.endswith("/r1"):
                self.requests.append(request)
                return httpx.Response(
                    422,
                    json={
                        "detail": [
                            {
                                "loc": ["body", "expand_top"],
                                "msg": "too large",
                                "type": "value_error",
                            }
                        ]
                    },
                )
            return super().__call__(request)

    with pytest.raises(errors.ValidationError, match="expand_top") as info:
        recover("r1", client_for(Failed()), journal)
    assert info.value.request_id == "r1"
    assert not os.path.exists(journal.results_dir)
