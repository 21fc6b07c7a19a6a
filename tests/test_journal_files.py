"""Data files opened safely (no links, no FIFOs, capped) with and without O_NOFOLLOW, and the
lock file: one holder, stale locks broken, only one's own lock released."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest
from flux_outpaint import journal_files
from flux_outpaint.journal import Journal
from flux_outpaint.journal_files import FileLock, LockTimeout, NotARegularFile, open_nofollow
from flux_outpaint.journal_records import GimpLayer
from flux_outpaint.status import RequestHandle

POSIX = pytest.mark.skipif(sys.platform == "win32", reason="symlinks and FIFOs as on POSIX")


@pytest.fixture(params=["O_NOFOLLOW", "without O_NOFOLLOW"])
def platform(request, monkeypatch):
    """Both code paths: the kernel's O_NOFOLLOW, and lstat + same-inode (as on Windows)."""
    if request.param != "O_NOFOLLOW":
        monkeypatch.delattr(os, "O_NOFOLLOW", raising=False)
        assert journal_files._nofollow_flag() is None
    else:
        assert journal_files._nofollow_flag() is not None
    return request.param


def handle(rid: str) -> RequestHandle:
    root = f"https://queue.fal.run/fal-ai/flux-2-pro/requests/{rid}"
    return RequestHandle(rid, f"{root}/status", root, f"{root}/cancel")


@POSIX
def test_a_symlinked_journal_is_never_followed(tmp_path, platform):
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("mine\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "journal.jsonl").symlink_to(elsewhere)
    journal = Journal(data / "journal.jsonl")
    with pytest.raises(NotARegularFile):
        journal.record_submit(handle("r1"), GimpLayer())
    with pytest.raises(NotARegularFile):
        journal.entries()
    assert elsewhere.read_text() == "mine\n"


@POSIX
def test_a_dangling_symlink_is_not_created_through(tmp_path, platform):
    target = tmp_path / "created-elsewhere"
    link = tmp_path / "journal.jsonl"
    link.symlink_to(target)
    with pytest.raises(OSError):
        os.close(open_nofollow(link, os.O_WRONLY | os.O_CREAT | os.O_APPEND))
    assert not target.exists()


@POSIX
def test_a_cached_result_linked_to_a_device_or_a_fifo_is_not_read(tmp_path, platform):
    journal = Journal(tmp_path / "journal.jsonl")
    journal.results_dir.mkdir(parents=True)
    (journal.results_dir / "r1.png").symlink_to("/dev/zero")
    os.mkfifo(journal.results_dir / "r2.png")
    started = time.monotonic()
    assert journal.cached_result("r1") is None
    assert journal.cached_result("r2") is None  # no writer: a blocking open would hang
    assert time.monotonic() - started < 5


def test_a_cached_result_larger_than_a_download_is_not_read(tmp_path, platform, monkeypatch):
    from flux_outpaint import result_cache

    monkeypatch.setattr(result_cache, "MAX_RESULT_BYTES", 1000)
    journal = Journal(tmp_path / "journal.jsonl")
    journal.store_result("big", b"\x89PNG" + bytes(2000), "image/png")
    journal.store_result("small", b"\x89PNG" + bytes(100), "image/png")
    assert journal.cached_result("big") is None
    assert journal.cached_result("small") == (b"\x89PNG" + bytes(100), "image/png")


def test_regular_files_open_on_both_paths(tmp_path, platform):
    path = tmp_path / "f"
    fd = open_nofollow(path, os.O_WRONLY | os.O_CREAT)
    os.write(fd, b"abc")
    os.close(fd)
    assert journal_files.read_capped(path, 10) == b"abc"
    assert journal_files.read_capped(path, 2) is None


@POSIX
def test_without_o_nofollow_a_link_swapped_in_after_the_check_is_caught(tmp_path, monkeypatch):
    monkeypatch.delattr(os, "O_NOFOLLOW", raising=False)
    real, other = tmp_path / "journal.jsonl", tmp_path / "other"
    real.write_text("")
    other.write_text("secret\n")
    opened = os.open

    def swap_then_open(path, flags, mode=0o777):
        if os.fspath(path) == os.fspath(real):
            real.unlink()
            real.symlink_to(other)  # between lstat and open, as a racing attacker would
        return opened(path, flags, mode)

    monkeypatch.setattr(os, "open", swap_then_open)
    with pytest.raises(NotARegularFile):
        open_nofollow(real, os.O_RDONLY)


def test_the_lock_has_one_holder_at_a_time(tmp_path):
    path = tmp_path / "j.lock"
    inside, most = [0], [0]

    def hold():
        for _ in range(30):
            with FileLock(path):
                inside[0] += 1
                most[0] = max(most[0], inside[0])
                time.sleep(0.0005)
                inside[0] -= 1

    threads = [threading.Thread(target=hold) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1 and not path.exists()


def test_a_lock_left_by_a_dead_process_is_broken(tmp_path, monkeypatch):
    path = tmp_path / "j.lock"
    path.write_bytes(b"999999999 nohost deadbeef")  # another host: only its age tells
    old = time.time() - journal_files.STALE_S - 1
    os.utime(path, (old, old))
    with FileLock(path, wait_s=2):
        assert path.read_bytes() != b"999999999 nohost deadbeef"
    assert not path.exists()


@pytest.mark.skipif(os.name == "nt", reason="owner check is POSIX only")
def test_a_young_lock_of_a_process_that_is_gone_is_broken_after_the_grace(tmp_path):
    import socket

    path = tmp_path / "j.lock"
    dead = 2**22 + 12345  # above any pid_max default: no such process
    path.write_bytes(f"{dead} {socket.gethostname()} cafe".encode())
    old = time.time() - journal_files.DEAD_GRACE_S - 0.5
    os.utime(path, (old, old))
    with FileLock(path, wait_s=1):
        pass


def test_a_live_lock_is_waited_for_then_reported(tmp_path):
    path = tmp_path / "j.lock"
    with FileLock(path), pytest.raises(LockTimeout):
        FileLock(path, wait_s=0.2).acquire()
    assert not path.exists()


def test_a_holder_judged_stale_does_not_remove_the_next_holders_lock(tmp_path):
    path = tmp_path / "j.lock"
    first = FileLock(path)
    first.acquire()
    path.unlink()  # broken by another process that judged it stale
    second = FileLock(path)
    second.acquire()
    first.release()
    assert path.exists()
    second.release()
    assert not path.exists()
