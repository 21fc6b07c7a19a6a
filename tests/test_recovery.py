"""The recovery service: which request, cache first with the integrity check, fetched by id
from the server that took it, never a submit; versions it cannot read refused in one line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
from fakes import FakeFal, status
from flux_outpaint import errors, recovery
from flux_outpaint.journal import Journal
from flux_outpaint.journal_records import (
    FORMAT_VERSION,
    CliFile,
    GimpLayer,
    PlanRecord,
    State,
    TakeOf,
    TooNewError,
)
from flux_outpaint.queue_client import FalQueueClient
from flux_outpaint.recovery import NothingToRecover, OtherServerError, choose, members
from test_pipeline import BASE, KEY, PNG, client_for, handle


def Fal(state: str = "COMPLETED", **routes) -> FakeFal:
    """fal that knows every request as finished (or in ``state``) and serves PNG."""
    return FakeFal(image=PNG, status=[status(state)], **routes)


PLAN = PlanRecord((28, 10), (8, 0, 20, 10), (28, 10))


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "data" / "journal.jsonl")


def cli(output: str = "/o.png", take: TakeOf | None = None) -> CliFile:
    return CliFile("/i.png", "ab" * 32, (20, 10), (8, 0), output, "PNG", 16, None, True, take)


def submit(journal: Journal, rid: str, purpose=None, *states: State) -> None:
    journal.record_submit(handle(rid), purpose or GimpLayer(), PLAN)
    for state in states:
        journal.mark(rid, state)


def entry(journal: Journal, rid: str):
    found = journal.find(rid)
    assert found is not None
    return found


# -- which request -------------------------------------------------------------------------


def test_the_latest_is_the_newest_unplaced_request_of_that_front_end(journal):
    submit(journal, "g1", GimpLayer(), State.COMPLETED, State.DOWNLOADED)
    submit(journal, "c1", cli(), State.DOWNLOADED)
    submit(journal, "g2", GimpLayer(), State.FAILED)  # nothing to bring back
    submit(journal, "c2", cli(), State.DOWNLOADED, State.PLACED)
    journal.mark("g1", State.UNPLACED)  # updated last: the newest of the GIMP ones
    assert choose(journal, None, "gimp").request_id == "g1"
    assert choose(journal, None, "cli").request_id == "c1"  # c2 was written


def test_when_everything_was_placed_the_newest_placed_one_comes_back(journal):
    submit(journal, "a", GimpLayer(), State.DOWNLOADED, State.PLACED)
    submit(journal, "b", GimpLayer(), State.DOWNLOADED, State.PLACED)
    assert choose(journal, None, "gimp").request_id == "b"
    with pytest.raises(NothingToRecover, match="Nothing to recover"):
        choose(journal, None, "cli")


def test_a_request_killed_while_queued_is_the_latest(journal):
    submit(journal, "done", GimpLayer(), State.DOWNLOADED)
    submit(journal, "killed", GimpLayer())  # journaled, then the process died
    assert choose(journal, None, "gimp").request_id == "killed"


def test_an_unknown_id_is_named(journal):
    with pytest.raises(NothingToRecover, match="has no request nope"):
        choose(journal, "nope", "gimp")


def test_the_takes_of_a_run_come_back_together_in_order(journal):
    run = [TakeOf("run1", n, 3) for n in (1, 2, 3)]
    submit(journal, "t2", GimpLayer(take=run[1]), State.DOWNLOADED)
    submit(journal, "t1", GimpLayer(take=run[0]), State.DOWNLOADED)
    submit(journal, "t3", GimpLayer(take=run[2]), State.FAILED)
    submit(journal, "other", GimpLayer(take=TakeOf("run2", 1, 2)), State.DOWNLOADED)
    entries = journal.entries()
    assert [e.request_id for e in members(entry(journal, "t1"), entries)] == ["t1", "t2"]
    # asked for by name, the failed one is part of the answer (and is then named as lost)
    assert [e.request_id for e in members(entry(journal, "t3"), entries)] == ["t1", "t2", "t3"]
    assert members(entry(journal, "other"), entries)[0].take == TakeOf("run2", 1, 2)


# -- versions ------------------------------------------------------------------------------


def test_a_record_from_a_newer_version_is_refused_in_one_line_never_misread(journal):
    submit(journal, "old", GimpLayer(), State.DOWNLOADED)
    newer = {
        "v": FORMAT_VERSION + 1,
        "time": "2030-01-01T00:00:00+0000",
        "event": "submitted",
        "request_id": "new",
        "state": "queued-somewhere-else",
        "purpose": {"tool": "gimp", "placement": "a shape this version cannot read"},
    }
    with journal.path.open("a") as f:
        f.write(json.dumps(newer) + "\n")
    with pytest.raises(TooNewError) as info:
        choose(journal, "new", "gimp")
    message = errors.user_message(info.value)
    assert f"journal format {FORMAT_VERSION + 1}" in message and "\n" not in message
    assert choose(journal, None, "gimp").request_id == "old"  # the latest skips it
    journal.store_result("new", PNG, "image/png")
    with pytest.raises(TooNewError):
        recovery.result(journal, entry(journal, "new"), lambda: pytest.fail("no client"))
    # compaction keeps what it cannot judge, byte for byte
    for i in range(5):
        submit(journal, f"p{i}", GimpLayer(), State.PLACED)
    journal.compact(keep_settled=0)
    assert json.dumps(newer) in journal.path.read_text()


def test_an_unknown_state_is_read_as_unknown_and_never_recovered_as_latest(journal):
    submit(journal, "a", GimpLayer(), State.DOWNLOADED)
    with journal.path.open("a") as f:
        f.write(json.dumps({"request_id": "a", "event": "state", "state": "teleported"}) + "\n")
    assert entry(journal, "a").state is State.UNKNOWN
    with pytest.raises(NothingToRecover):
        choose(journal, None, "gimp")


# -- the result: cache first, checked; fetched by id from the server that took it ------------


def test_the_cache_comes_first_and_nothing_is_asked(journal):
    submit(journal, "r1", GimpLayer(), State.DOWNLOADED)
    journal.store_result("r1", PNG, "image/png")
    got = recovery.result(journal, entry(journal, "r1"), lambda: pytest.fail("no client"))
    assert got == (PNG, "image/png")


def test_a_damaged_cached_copy_is_fetched_again(journal):
    submit(journal, "r1", GimpLayer(), State.DOWNLOADED)
    journal.store_result("r1", PNG[:40], "image/png")  # cut short
    fal = Fal()
    got = recovery.result(journal, entry(journal, "r1"), lambda: client_for(fal))
    assert got == (PNG, "image/png")
    assert [name for name, _ in fal.requests] == ["status", "result", "file"]
    assert journal.cached_result("r1") == (PNG, "image/png")
    assert entry(journal, "r1").state is State.DOWNLOADED


def test_a_fetch_never_submits_and_stores_the_result(journal):
    submit(journal, "r1", GimpLayer(), State.FAILED)
    journal.mark("r1", State.FAILED, error="connection lost while waiting")
    fal = Fal()
    assert recovery.fetch(entry(journal, "r1"), client_for(fal), journal) == (PNG, "image/png")
    assert [name for name, _ in fal.requests] == ["status", "result", "file"]
    assert str(fal.requests[0][1].url).startswith(handle("r1").status_url)
    found = entry(journal, "r1")
    assert found.state is State.DOWNLOADED and Path(found.result_path).read_bytes() == PNG


@pytest.mark.parametrize(("state", "word"), [("IN_PROGRESS", "running"), ("IN_QUEUE", "queued")])
def test_an_unfinished_request_says_so(journal, state, word):
    submit(journal, "r1")
    fal = Fal(state=state)
    with pytest.raises(errors.ResultUnavailableError, match=f"still {word}") as info:
        recovery.fetch(entry(journal, "r1"), client_for(fal), journal)
    assert info.value.request_id == "r1" and len(fal.requests) == 1


def test_the_models_error_is_reported(journal):
    detail = [{"loc": ["body", "expand_top"], "msg": "too large", "type": "x"}]
    submit(journal, "r1")
    fal = Fal(result=[httpx.Response(422, json={"detail": detail})])
    with pytest.raises(errors.ValidationError, match="expand_top") as info:
        recovery.fetch(entry(journal, "r1"), client_for(fal), journal)
    assert info.value.request_id == "r1"
    assert not os.path.exists(journal.results_dir)


def test_a_request_made_on_another_server_names_that_server_and_sends_it_no_key(journal):
    root = "http://127.0.0.1:9/fal-ai/flux-2-pro/requests/r1"  # nothing listens on port 9
    from flux_outpaint.status import RequestHandle

    journal.record_submit(RequestHandle("r1", f"{root}/status", root, f"{root}/cancel"), cli())
    fal = Fal()
    with pytest.raises(OtherServerError) as info:
        recovery.fetch(entry(journal, "r1"), client_for(fal), journal)
    assert "made on http://127.0.0.1:9" in str(info.value) and "--base-url" in str(info.value)
    assert fal.requests == []
    # the same server, named now: fetched from it
    local = FalQueueClient(
        "http://127.0.0.1:9", KEY, transport=httpx.MockTransport(fal), use_stream=False
    )
    assert recovery.fetch(entry(journal, "r1"), local, journal)[0] == PNG
    assert BASE not in str(fal.requests[0][1].url)


# -- the recover hint ----------------------------------------------------------------------


def test_the_hint_only_where_the_result_can_still_come_back(journal):
    submit(journal, "killed")
    submit(journal, "timed-out", GimpLayer(), State.CANCELLED)  # cancelled on fal at its deadline
    submit(journal, "broken", GimpLayer(), State.FAILED)  # a broken status answer: may finish
    submit(journal, "late", GimpLayer(), State.COMPLETED, State.FAILED)  # download failed
    submit(journal, "ctrl-c", GimpLayer(), State.COMPLETED, State.CANCELLED)
    boom = errors.NetworkError("connection lost")
    assert recovery.worth_a_hint(boom, entry(journal, "killed"))
    assert not recovery.worth_a_hint(boom, entry(journal, "timed-out"))
    assert recovery.worth_a_hint(errors.ResultError("huge"), entry(journal, "broken"))
    assert recovery.worth_a_hint(boom, entry(journal, "late"))
    assert recovery.worth_a_hint(errors.CancelledError("x"), entry(journal, "ctrl-c"))
    assert not recovery.worth_a_hint(errors.ContentPolicyError("no"), entry(journal, "late"))
    assert not recovery.worth_a_hint(errors.ResultUnavailableError("gone"), entry(journal, "late"))
    assert not recovery.worth_a_hint(boom, None)  # not journaled: --recover cannot find it
