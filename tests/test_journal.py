"""The request journal: durable appends, folding, damage tolerance, result cache."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import threading
import time
from pathlib import Path

import pytest
from flux_outpaint import journal as journal_module
from flux_outpaint import result_cache
from flux_outpaint.errors import StorageError
from flux_outpaint.journal import Journal, default_journal_path
from flux_outpaint.journal_records import GimpLayer, UnknownPurpose
from flux_outpaint.recovery import latest
from flux_outpaint.status import RequestHandle

BASE = "https://queue.fal.run"
KEY = "journal-test-key:abcdef123456"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 32


def raw(**fields) -> UnknownPurpose:
    """A purpose this version cannot read: written and read back as it is."""
    return UnknownPurpose(raw=fields)


NONE = UnknownPurpose()


def handle(rid: str) -> RequestHandle:
    root = f"{BASE}/fal-ai/flux-2-pro/requests/{rid}"
    return RequestHandle(rid, f"{root}/status", root, f"{root}/cancel")


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "data" / "journal.jsonl")


def test_default_path_follows_the_data_dir(tmp_path):
    env = {"FLUX_OUTPAINT_DATA_DIR": str(tmp_path / "d")}
    assert default_journal_path(env) == tmp_path / "d" / "journal.jsonl"
    assert default_journal_path({"HOME": "/h"}).name == "journal.jsonl"


def test_submit_then_marks_fold_into_one_entry(journal):
    journal.record_submit(handle("r1"), raw(tool="cli", input="a.png"))
    journal.mark("r1", "completed")
    journal.mark("r1", "downloaded", result_path="/x/r1.png")
    (entry,) = journal.entries()
    assert entry.request_id == "r1" and entry.state == "downloaded"
    assert entry.handle == handle("r1")
    # a CLI purpose without what recover needs is not a CliFile: kept as it came
    assert entry.purpose == UnknownPurpose("cli", None, {"tool": "cli", "input": "a.png"})
    assert entry.result_path == "/x/r1.png"
    assert entry.submitted_at and entry.updated_at
    assert journal.find("r1") == entry and journal.find("nope") is None


def test_a_note_adds_details_and_keeps_the_state(journal):
    journal.record_submit(handle("r1"), GimpLayer())
    journal.mark("r1", "downloaded", result_path="/x/r1.png")
    journal.note_correction("r1", {"gains": [1.1, 1.0, 0.9], "offsets": [3, 0, -2]})
    (entry,) = journal.entries()
    assert entry.state == "downloaded"
    assert entry.color_correction["gains"] == [1.1, 1.0, 0.9]
    assert entry.result_path == "/x/r1.png"
    assert latest(journal.entries(), "gimp") == entry


def test_file_is_append_only_json_lines(journal):
    journal.record_submit(handle("r1"), NONE)
    first = journal.path.read_bytes()
    journal.mark("r1", "failed", error="fal had a temporary failure (HTTP 503)")
    assert journal.path.read_bytes().startswith(first)
    lines = journal.path.read_text().splitlines()
    assert [json.loads(line)["state"] for line in lines] == ["submitted", "failed"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_journal_and_results_are_private(journal):
    journal.record_submit(handle("r1"), NONE)
    path = journal.store_result("r1", PNG, "image/png")
    assert stat.S_IMODE(journal.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_truncated_last_line_is_skipped_and_does_not_swallow_the_next(journal):
    journal.record_submit(handle("r1"), NONE)
    with open(journal.path, "ab") as f:
        f.write(b'{"time": "x", "event": "state", "request_id": "r1", "sta')  # crash mid-write
    assert [e.state for e in journal.entries()] == ["submitted"]
    journal.mark("r1", "completed")
    assert journal.find("r1").state == "completed"
    lines = journal.path.read_bytes().split(b"\n")
    assert json.loads(lines[-2])["state"] == "completed"


def test_garbage_lines_are_ignored(journal):
    journal.path.parent.mkdir(parents=True)
    journal.path.write_bytes(b'not json\n[1, 2]\n{"no": "id"}\n\xff\xfe\n')
    journal.record_submit(handle("r1"), NONE)
    assert [e.request_id for e in journal.entries()] == ["r1"]


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "j.jsonl"
    ids = [f"req-{i}" for i in range(16)]

    def work(rid):  # a separate Journal object per thread, like separate plug-in runs
        j = Journal(path)
        j.record_submit(handle(rid), raw(n=rid))
        for state in ("completed", "downloaded"):
            j.mark(rid, state)

    threads = [threading.Thread(target=work, args=(rid,)) for rid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = Journal(path).entries()
    assert sorted(e.request_id for e in entries) == sorted(ids)
    assert all(e.state == "downloaded" for e in entries)
    assert len(path.read_text().splitlines()) == 3 * len(ids)


def test_never_stores_the_key(journal):
    journal.record_submit(handle("r1"), raw(note=f"Authorization: Key {KEY}"))
    journal.mark("r1", "failed", error=f"header was Key {KEY}")
    assert KEY not in journal.path.read_text()


def test_mark_takes_only_a_known_state(journal):
    with pytest.raises(ValueError):
        journal.mark("r1", "half-done")
    assert not journal.path.exists()


def test_store_result_is_atomic_and_cached(journal):
    path = journal.store_result("r1", PNG, "image/png")
    assert path.read_bytes() == PNG and path.suffix == ".png"
    assert path.parent == journal.path.parent / "results"
    assert journal.cached_result("r1") == (PNG, "image/png")
    assert journal.cached_result("r2") is None
    assert [p.name for p in path.parent.iterdir()] == ["r1.png"]  # no temporary left
    assert journal.store_result("r2", b"\xff\xd8\xff", "image/jpeg").suffix == ".jpg"


@pytest.mark.parametrize("rid", ["../evil", "a/b", "", ".hidden"])
def test_store_result_refuses_ids_that_are_not_file_names(journal, rid):
    with pytest.raises(ValueError):
        journal.store_result(rid, PNG, "image/png")


def test_store_result_refuses_non_images(journal):
    with pytest.raises(ValueError):
        journal.store_result("r1", b"<html>", "text/html")


def test_the_secrets_it_is_given_are_redacted_everywhere(journal):
    secret = "plainsecretwithoutprefix"
    safe = journal.with_secrets((secret,))
    assert safe.path == journal.path and safe.with_secrets((secret,)) is safe
    root = f"{BASE}/fal-ai/flux-2-pro/requests/r1"
    safe.record_submit(
        RequestHandle("r1", f"{root}/status?key={secret}", root, f"{root}/cancel"),
        raw(note=f"echo {secret}", deep=[{"x": secret}]),
    )
    safe.mark("r1", "failed", error=f"server said {secret}")
    text = journal.path.read_text()
    assert secret not in text and text.count("***") == 4


def test_control_characters_never_reach_the_file(journal):
    journal.record_submit(handle("r1"), GimpLayer(layer="bg\x1b]0;pwned\x07"))
    journal.mark("r1", "failed", error="boom\x1b[2J\x9b31m\u202e")
    raw = journal.path.read_bytes()
    assert b"\x1b" not in raw and "\u202e".encode() not in raw and b"\xc2\x9b" not in raw
    assert journal.find("r1").error == "boom"
    assert journal.find("r1").purpose.layer == "bg"


@pytest.mark.parametrize(
    "bad",
    [
        {"request_id": "r2", "state": "completed", "time": 5},
        {"request_id": "r2", "state": 3},
        {"request_id": "r2", "event": "submitted", "handle": "not a dict"},
        {"request_id": "r2", "event": "submitted", "purpose": ["x"]},
        {"request_id": "../../etc", "state": "completed"},
        {"request_id": 7, "state": "completed"},
    ],
)
def test_malformed_records_are_skipped(journal, bad):
    journal.record_submit(handle("r1"), NONE)
    journal.mark("r1", "completed")
    with journal.path.open("a") as out:
        out.write(json.dumps(bad) + "\n")
    entries = journal.entries()
    assert [e.request_id for e in entries] == ["r1"]
    assert entries[0].state == "completed"
    assert all(isinstance(e.updated_at, str) for e in entries)


def test_ensure_writable_proves_the_folder_and_leaves_nothing_behind(journal):
    journal.ensure_writable(10 * 1024)
    assert journal.path.exists() and journal.path.read_bytes() == b""
    assert list(journal.results_dir.iterdir()) == []


def test_ensure_writable_refuses_a_folder_under_a_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    journal = Journal(blocker / "data" / "journal.jsonl")
    with pytest.raises(StorageError, match="Cannot write the journal") as info:
        journal.ensure_writable()
    assert "Not a directory" in str(info.value) or "exists" in str(info.value)


def test_ensure_writable_refuses_a_disk_without_room_for_the_result(journal, monkeypatch):
    usage = shutil.disk_usage(journal.path.parent.parent)
    monkeypatch.setattr(
        "flux_outpaint.journal.shutil.disk_usage",
        lambda path: usage._replace(free=3 * 1024 * 1024),
    )
    journal.ensure_writable(1024 * 1024)
    with pytest.raises(StorageError, match="Not enough free space"):
        journal.ensure_writable(16 * 1024 * 1024)


def _age(journal: Journal, rid: str, seconds_ago: float) -> None:
    path = journal.results_dir / f"{rid}.png"
    when = time.time() - seconds_ago
    os.utime(path, (when, when))


def test_cache_keeps_the_newest_results_by_count(journal, monkeypatch):
    monkeypatch.setattr(result_cache, "RESULT_CACHE_MAX_FILES", 3)
    for i in range(5):
        journal.store_result(f"r{i}", b"\x89PNG" + bytes(10), "image/png")
        _age(journal, f"r{i}", 100 - i)  # r4 is the newest
    journal.store_result("r5", b"\x89PNG" + bytes(10), "image/png")
    kept = sorted(p.stem for p in journal.results_dir.iterdir())
    assert kept == ["r3", "r4", "r5"]
    assert journal.cached_result("r1") is None


def test_cache_keeps_the_newest_results_by_size(journal, monkeypatch):
    monkeypatch.setattr(result_cache, "RESULT_CACHE_MAX_BYTES", 2500)
    for i in range(4):
        journal.store_result(f"r{i}", bytes(1000), "image/png")
        _age(journal, f"r{i}", 100 - i)
    assert sorted(p.stem for p in journal.results_dir.iterdir()) == ["r2", "r3"]


def test_the_result_just_stored_is_kept_even_over_the_limit(journal, monkeypatch):
    monkeypatch.setattr(result_cache, "RESULT_CACHE_MAX_BYTES", 10)
    journal.store_result("old", bytes(5), "image/png")
    _age(journal, "old", 50)
    journal.store_result("big", bytes(100), "image/png")
    assert [p.stem for p in journal.results_dir.iterdir()] == ["big"]


def test_pruning_ignores_files_that_are_not_results(journal):
    journal.results_dir.mkdir(parents=True)
    (journal.results_dir / ".x.png.1.2.tmp").write_bytes(b"partial")
    (journal.results_dir / "notes.txt").write_text("mine")
    journal.store_result("a", bytes(10), "image/png")
    assert journal.prune_results(max_files=0, max_bytes=0) == [journal.results_dir / "a.png"]
    assert sorted(p.name for p in journal.results_dir.iterdir()) == [".x.png.1.2.tmp", "notes.txt"]


def test_cache_limits_are_documented():
    doc = result_cache.__doc__ or ""
    assert "RESULT_CACHE_MAX_FILES" in doc and "RESULT_CACHE_MAX_BYTES" in doc
    assert journal_module.RESULT_CACHE_MAX_FILES == 50
    assert journal_module.RESULT_CACHE_MAX_BYTES == 500 * 1024 * 1024


def test_compaction_keeps_every_unplaced_request_and_the_newest_settled(journal):
    for n in range(6):
        journal.record_submit(handle(f"placed-{n}"), NONE)
        journal.mark(f"placed-{n}", "placed")
    journal.record_submit(handle("waiting"), NONE)  # submitted, never finished here
    journal.record_submit(handle("failed"), NONE)
    journal.mark("failed", "failed", error="x")
    journal.record_submit(handle("unplaced"), NONE)
    journal.mark("unplaced", "unplaced")
    with journal.path.open("ab") as f:
        f.write(b"not json\n")
    before, after = journal.compact(keep_settled=2)
    assert after < before
    ids = [e.request_id for e in journal.entries()]
    assert ids == ["placed-5", "waiting", "failed", "unplaced"]
    assert all(line.startswith(b"{") for line in journal.path.read_bytes().splitlines())


def test_a_large_journal_left_by_an_older_version_is_compacted_at_the_first_append(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(journal_module, "COMPACT_LARGE_BYTES", 20_000)
    path = tmp_path / "journal.jsonl"
    old = Journal(path)
    for n in range(KEEP + 60):
        old.record_submit(handle(f"r{n}"), NONE)
        old.mark(f"r{n}", "placed")
    size = path.stat().st_size
    assert size > 20_000
    monkeypatch.setattr(journal_module, "KEEP_SETTLED", KEEP)
    journal_module._LARGE_SEEN.clear()
    Journal(path).record_submit(handle("new"), NONE)
    assert path.stat().st_size < size
    assert len(Journal(path).entries()) == KEEP + 1


KEEP = 10
