"""Ctrl-C: every request in flight is cancelled on fal and in the journal, each id is named,
nothing is written, exit 130; a second Ctrl-C leaves at once.  The CLI runs as a subprocess
against the local server in this process, whose jobs never finish unless cancelled."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_support import CLI, keyed, photo
from flux_outpaint.journal import Journal

pytestmark = pytest.mark.server


@pytest.fixture
def endless():
    import flux_outpaint_fal_local

    srv = flux_outpaint_fal_local.start_server(scenarios=["never-finish"])
    try:
        yield srv
    finally:
        srv.stop()


def start(
    tmp_path: Path, env, srv, n: int, jobs: int, *extra: str
) -> tuple[subprocess.Popen, list[Path]]:
    inputs = []
    for i in range(n):
        p = tmp_path / f"in{i}.png"
        photo(96, 80, seed=i).save(p)
        inputs.append(p)
    proc = subprocess.Popen(
        [
            sys.executable,
            str(CLI),
            *map(str, inputs),
            "--left",
            "16",
            "--jobs",
            str(jobs),
            "--base-url",
            srv.base_url,
            *extra,
        ],
        env=keyed(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    return proc, inputs


def wait_for(condition, proc: subprocess.Popen) -> None:
    """Until ``condition()`` holds (the test's own timeout is the only limit)."""
    while not condition():
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)


def running(srv, n: int):
    def check() -> bool:
        jobs = [srv._backend.jobs.get(rid) for rid in srv.submits]
        return len(jobs) == n and all(j is not None and j.state == "IN_PROGRESS" for j in jobs)

    return check


def test_ctrl_c_cancels_every_request_in_flight(tmp_path, env, endless):
    proc, inputs = start(tmp_path, env, endless, 2, 2)
    wait_for(running(endless, 2), proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    err = err.decode()
    assert proc.returncode == 130, err
    journal = Journal(Path(env["FLUX_OUTPAINT_DATA_DIR"]) / "journal.jsonl")
    for rid in endless.submits:
        assert f"cancelled request {rid}" in err
        assert endless._backend.jobs[rid].cancel_requested
        entry = journal.find(rid)
        assert entry is not None and entry.state == "cancelled"
    assert "Traceback" not in err
    assert not any(p.name.endswith("-outpaint.png") for p in tmp_path.iterdir())
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_ctrl_c_cancels_every_take_of_a_variations_run_and_names_each(tmp_path, env, endless):
    proc, _ = start(tmp_path, env, endless, 1, 1, "--variations", "3")
    wait_for(running(endless, 3), proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    err = err.decode()
    assert proc.returncode == 130, err
    journal = Journal(Path(env["FLUX_OUTPAINT_DATA_DIR"]) / "journal.jsonl")
    (line,) = [x for x in err.splitlines() if "cancelled requests" in x]
    for rid in endless.submits:
        assert rid in line
        assert endless._backend.jobs[rid].cancel_requested
        entry = journal.find(rid)
        assert entry is not None and entry.state == "cancelled"
    assert "Traceback" not in err
    assert not any("outpaint" in p.name for p in tmp_path.iterdir())


def test_ctrl_c_sends_nothing_more_and_counts_the_rest_as_skipped(tmp_path, env, endless):
    proc, _ = start(tmp_path, env, endless, 3, 1)
    wait_for(running(endless, 1), proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    err = err.decode()
    assert proc.returncode == 130, err
    assert len(endless.submits) == 1
    assert "skipped 2, cancelled 1" in err


def test_a_second_ctrl_c_leaves_at_once(tmp_path, env, endless):
    proc, _ = start(tmp_path, env, endless, 2, 2)
    wait_for(running(endless, 2), proc)
    proc.send_signal(signal.SIGINT)
    wait_for(lambda: True, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert "Traceback" not in err.decode()
    assert not any(p.name.endswith("-outpaint.png") for p in tmp_path.iterdir())


@pytest.mark.parametrize(("sig", "code"), [("SIGTERM", 143), ("SIGHUP", 129)])
def test_sigterm_and_sighup_cancel_like_the_first_ctrl_c(tmp_path, env, endless, sig, code):
    if not hasattr(signal, sig):
        pytest.skip(f"no {sig} on this platform")  # signals.available() leaves it out too
    proc, _ = start(tmp_path, env, endless, 2, 2)
    wait_for(running(endless, 2), proc)
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=60)
    err = err.decode()
    assert proc.returncode == code, err
    journal = Journal(Path(env["FLUX_OUTPAINT_DATA_DIR"]) / "journal.jsonl")
    for rid in endless.submits:
        assert f"cancelled request {rid}" in err
        assert endless._backend.jobs[rid].cancel_requested
        entry = journal.find(rid)
        assert entry is not None and entry.state == "cancelled"
    assert "Stopped by a signal" in err and "Traceback" not in err
    assert not any(p.name.endswith("-outpaint.png") for p in tmp_path.iterdir())
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_a_signal_before_anything_was_sent_exits_with_its_status(tmp_path, env):
    # stdin that never ends: the CLI is still reading its input when SIGTERM comes
    proc = subprocess.Popen(
        [sys.executable, str(CLI), "-", "--left", "16", "-o", str(tmp_path / "o.png")],
        env=keyed(env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    proc.stdin.write(b"\x89PNG")
    proc.stdin.flush()
    # Wait until the handler is in place (Linux shows caught signals in /proc), so the signal
    # does not meet a process still importing; elsewhere a pause does.
    status = Path(f"/proc/{proc.pid}/status")
    started = time.monotonic()
    while time.monotonic() - started < 60 and status.exists():
        caught = [ln for ln in status.read_text().splitlines() if ln.startswith("SigCgt:")]
        if caught and int(caught[0].split()[1], 16) & (1 << (signal.SIGTERM - 1)):
            break
        time.sleep(0.05)
    else:
        time.sleep(3.0)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err.decode()
    assert "Traceback" not in err.decode()


# -- in this process: main() never ends the process, the console command does ---------------


def test_the_second_ctrl_c_names_what_runs_and_raises_quit_now(capsys):
    from types import SimpleNamespace

    from flux_outpaint_cli import main as cli

    pending = {
        object(): SimpleNamespace(name="a.png", request_ids=[], request_id="rid-a"),
        object(): SimpleNamespace(name="b.png", request_ids=["rid-b1", "rid-b2"], request_id=None),
    }
    with pytest.raises(cli.QuitNow) as info:
        cli._quit_now(pending, None)
    assert info.value.code == 130
    err = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in err] == ["a.png", "b.png", "b.png", "Quit"]
    assert all("may still run on fal" in line and "--recover" in line for line in err[:3])


def test_only_the_console_command_leaves_at_once(monkeypatch):
    from flux_outpaint_cli import main as cli

    class Left(BaseException):
        pass

    def second_ctrl_c(argv=None):
        raise cli.QuitNow

    def _exit(code: int):
        raise Left(code)

    monkeypatch.setattr(cli, "main", second_ctrl_c)
    monkeypatch.setattr(cli.os, "_exit", _exit)
    with pytest.raises(Left) as info:
        cli.entry()
    assert info.value.args == (130,)
