"""The recover hint after a failed input: printed (and the request marked ``unplaced``) only
where the result can still come back; never for a request the journal does not hold."""

from __future__ import annotations

import errno

import httpx
import pytest
from fakes import status
from flux_outpaint import errors
from flux_outpaint.journal import Journal
from flux_outpaint.journal_records import GimpLayer, State
from flux_outpaint.pipeline import run_job
from flux_outpaint_cli.main import _unplaced
from test_pipeline import RID, client_for, encoder, fake_fal, handle, job


@pytest.fixture
def journal(tmp_path) -> Journal:
    return Journal(tmp_path / "journal.jsonl")


def test_no_hint_for_a_request_whose_journal_write_failed(journal, monkeypatch):
    def full(self, handle, purpose=None, plan=None):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Journal, "record_submit", full)
    with pytest.raises(errors.StorageError) as info:
        run_job(
            job(),
            client=client_for(fake_fal(status=[status("IN_PROGRESS")])),
            journal=journal,
            encoder=encoder,
        )
    monkeypatch.undo()
    assert info.value.request_id == RID
    assert "--recover" not in errors.user_message(info.value)
    assert not _unplaced(journal, RID, info.value)
    assert journal.find(RID) is None  # nothing appended for an id never journaled


def test_a_request_fal_finished_before_our_deadline_is_journaled_as_completed(journal):
    # still running at our deadline; finished by the time we cancel
    slow = fake_fal(
        status=[status("IN_PROGRESS")],
        cancel=[httpx.Response(400, json={"status": "ALREADY_COMPLETED"})],
    )

    with pytest.raises(errors.FinishedLateError) as info:
        client = client_for(slow)
        run_job(job(), client=client, journal=journal, encoder=encoder, deadline_s=0.3)
    entry = journal.find(RID)
    assert entry.completed and entry.state is State.FAILED
    assert _unplaced(journal, RID, info.value)  # the hint: its result can come back


@pytest.mark.parametrize(
    ("states", "exc", "hint"),
    [
        ((), errors.NetworkError("connection lost"), True),
        ((State.CANCELLED,), errors.OutpaintTimeoutError("cancelled at its deadline"), False),
        ((State.FAILED,), errors.ResultError("status too large to read"), True),
        ((State.COMPLETED, State.FAILED), errors.ResultError("download cut"), True),
        ((State.COMPLETED,), errors.ContentPolicyError("flagged"), False),
        ((State.COMPLETED,), errors.ResultUnavailableError("expired"), False),
        ((State.FAILED,), errors.ServerError("job failed"), False),
        ((State.COMPLETED, State.FAILED), errors.FinishedLateError("finished, slow"), True),
    ],
    ids=[
        "killed-wait",
        "timed-out",
        "broken-status",
        "download-failed",
        "policy",
        "expired",
        "failed-job",
        "finished-late",
    ],
)
def test_the_hint_and_the_unplaced_mark_go_together(journal, states, exc, hint):
    journal.record_submit(handle("r1"), GimpLayer())
    for state in states:
        journal.mark("r1", state)
    assert _unplaced(journal, "r1", exc) is hint
    assert (journal.find("r1").state is State.UNPLACED) is hint
