"""Inputs that never end or never start, and work a deadline or a cancel leaves behind
(flux_outpaint_cli/bounded.py).  The CLI runs of the same cases are in test_cli_inputs.py."""

from __future__ import annotations

import io
import os
import threading
import time

import pytest
from cli_support import photo
from flux_outpaint.errors import CancelledError, InputError, OutpaintTimeoutError
from flux_outpaint_cli import bounded


class Endless(io.RawIOBase):
    """``head``, then ``fill`` for ever; counts what was read."""

    def __init__(self, head: bytes = b"", fill: int = 0) -> None:
        self.head, self.fill, self.served = head, bytes([fill]) * (1 << 20), 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.served < len(self.head):
            out = self.head[self.served : self.served + n]
        else:
            out = self.fill[:n]
        self.served += len(out)
        return out


def png_bytes(w: int = 96, h: int = 64) -> bytes:
    out = io.BytesIO()
    photo(w, h).save(out, "PNG")
    return out.getvalue()


def test_zeros_are_refused_after_the_head():
    stream = Endless()
    with pytest.raises(InputError, match="Not an image"):
        bounded.read_stream(stream, "stdin")
    assert stream.served == bounded.HEAD_BYTES


def test_an_image_header_followed_by_an_endless_tail_stops_at_what_it_could_take():
    head = png_bytes()[:100]
    stream = Endless(head)
    with pytest.raises(InputError, match="without an end"):
        bounded.read_stream(stream, "stdin")
    assert stream.served <= 96 * 64 * 8 + bounded.SLACK_BYTES + (1 << 20)


def test_a_whole_image_is_read_whole():
    data = png_bytes()
    assert bounded.read_stream(io.BytesIO(data), "stdin") == data


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_without_a_writer_gives_up_at_the_deadline(tmp_path):
    fifo = tmp_path / "in.png"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match=r"within 0\.5 s"):
        bounded.read_input(fifo, "in.png", io.BytesIO(), 0.5)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_with_an_image_is_read(tmp_path):
    fifo, data = tmp_path / "in.png", png_bytes()
    os.mkfifo(fifo)

    def writer() -> None:
        with open(fifo, "wb") as f:
            f.write(data)

    threading.Thread(target=writer, daemon=True).start()
    assert bounded.read_input(fifo, "in.png", io.BytesIO(), 10) == data


def test_a_pipe_path_is_read_like_stdin():
    data = png_bytes()
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    try:
        got = bounded.read_input(bounded.Path(f"/dev/fd/{r}"), "pipe", io.BytesIO(), 10)
    finally:
        os.close(r)
    assert got == data


def test_a_regular_file_too_large_is_refused_by_its_size(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    path.write_bytes(png_bytes() + bytes(5000))
    monkeypatch.setattr(bounded, "MAX_INPUT_BYTES", 4096)
    with pytest.raises(InputError, match="larger than 4 KiB"):
        bounded.read_input(path, "big.png", io.BytesIO(), 10)


def test_abandonable_hands_back_values_and_errors():
    assert bounded.abandonable(lambda: 42, deadline=None, what="x") == 42
    with pytest.raises(ZeroDivisionError):
        bounded.abandonable(lambda: 1 // 0, deadline=None, what="x")


def test_abandonable_leaves_slow_work_at_the_deadline_and_on_cancel():
    release = threading.Event()
    started = time.monotonic()
    with pytest.raises(OutpaintTimeoutError, match="Decoding did not finish"):
        bounded.abandonable(release.wait, deadline=time.monotonic() + 0.3, what="Decoding")
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    with pytest.raises(CancelledError):
        bounded.abandonable(release.wait, deadline=None, cancel=cancel, what="Decoding")
    release.set()
    assert time.monotonic() - started < 30  # not timed: both returned without the release


def test_decoding_fals_image_is_left_behind_at_the_deadline_and_on_cancel(monkeypatch):
    # A decoder stuck in a file built to be slow (here: one that waits for ever) does not hold
    # the job: the deadline and Ctrl-C's cancel flag end the wait.
    from flux_outpaint_cli import jobs

    data = png_bytes(112, 72)
    release = threading.Event()

    class Stuck:
        def load(self) -> None:
            release.wait()

    monkeypatch.setattr(jobs.Image, "open", lambda *_: Stuck())
    with pytest.raises(OutpaintTimeoutError, match="Decoding fal's image"):
        jobs.open_result(data, (112, 72), deadline=time.monotonic() + 0.3)
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    with pytest.raises(CancelledError):
        jobs.open_result(data, (112, 72), cancel=cancel)
    release.set()
    monkeypatch.undo()
    assert jobs.open_result(data, (112, 72)).size == (112, 72)
