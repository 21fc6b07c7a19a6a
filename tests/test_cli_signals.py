"""SIGTERM and SIGHUP handled where the platform has them, and only there (signals.py).

The end-to-end runs (a real CLI process, a real signal) are in test_cli_cancel.py; here the
handlers themselves, with names absent as on Windows, and the outputs a quit at once
removes."""

from __future__ import annotations

import signal
import threading

import pytest
from flux_outpaint_cli import outputs, signals


def test_each_signal_is_handled_where_it_exists():
    names = {signal.Signals(n).name for n in signals.available()}
    assert names == {n for n in signals.STOP_SIGNALS if hasattr(signal, n)}
    with signals.handled():
        for n in signals.available():
            assert signal.getsignal(n) is signals._raise
    for n in signals.available():
        assert signal.getsignal(n) is not signals._raise  # put back as it was


@pytest.mark.parametrize("missing", [("SIGHUP",), ("SIGHUP", "SIGTERM")])
def test_without_sighup_or_sigterm_the_others_still_work(monkeypatch, missing):
    for name in missing:
        monkeypatch.delattr(signal, name, raising=False)
    left = [n for n in signals.STOP_SIGNALS if n not in missing]
    assert [signal.Signals(n).name for n in signals.available()] == left
    with signals.handled():
        pass  # nothing to install for a missing name, nothing raised
    calls: list[int] = []
    previous = signal.getsignal(signal.SIGINT)
    try:
        signals.on_every_stop(calls.append)
        signal.raise_signal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, previous)
        for name in left:
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    assert calls == [130]


def test_a_stop_signal_raises_with_its_exit_status():
    if not signals.available():
        pytest.skip("no SIGTERM/SIGHUP here")
    sig = signals.available()[0]
    with pytest.raises(KeyboardInterrupt) as info, signals.handled():
        signal.raise_signal(sig)
    assert signals.exit_code(info.value) == 128 + sig
    assert signals.exit_code(KeyboardInterrupt()) == 130


def test_outside_the_main_thread_nothing_is_installed():
    seen: list[object] = []

    def worker() -> None:
        with signals.handled():
            seen.append(signal.getsignal(signal.SIGINT))

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen and seen[0] is not signals._raise


def test_a_quit_at_once_removes_the_outputs_being_written(tmp_path):
    target = outputs.Target(tmp_path / "o.png", "PNG")
    with outputs.atomic(target, False, lambda: True) as stream:
        stream.write(b"half")
        parts = list(tmp_path.glob(".o.png.*.part"))
        assert len(parts) == 1
        outputs.remove_parts()
        assert not parts[0].exists()
    assert list(tmp_path.iterdir()) == []


def test_a_dangling_link_as_the_output_is_refused_before_submitting(tmp_path):
    link = tmp_path / "o.png"
    link.symlink_to(tmp_path / "nowhere" / "x.png")
    with pytest.raises(outputs.OutputExistsError, match="exists"):
        outputs.check_free(outputs.Target(link, "PNG"), force=False)
    outputs.check_free(outputs.Target(link, "PNG"), force=True)  # --force replaces the link
