"""The event-stream parser and the pump that feeds a waiting thread."""

from __future__ import annotations

import queue
import threading

import pytest
from flux_outpaint.sse import (
    MAX_EVENT_CHARS,
    MAX_LINE_CHARS,
    SSEError,
    SSEEvent,
    SSEParser,
    StreamItem,
    pump,
)


def parse_all(chunks: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    events = []
    for chunk in chunks:
        events += parser.feed(chunk)
    return events + parser.close()


def test_fal_status_events_one_data_line_each():
    stream = (
        b'data: {"status": "IN_QUEUE", "queue_position": 1}\n\n'
        b": keepalive\n\n"
        b'data: {"status": "COMPLETED"}\n\n'
    )
    events = parse_all([stream])
    assert [e.data for e in events] == [
        '{"status": "IN_QUEUE", "queue_position": 1}',
        '{"status": "COMPLETED"}',
    ]
    assert all(e.event == "message" for e in events)


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending(eol):
    stream = b"event: status" + eol + b"data: a" + eol + b"data: b" + eol + eol
    (event,) = parse_all([stream])
    assert event == SSEEvent("a\nb", "status")


def test_split_anywhere_including_inside_crlf_and_utf8():
    stream = "data: héllo\r\n\r\ndata: wörld\r\n\r\n".encode()
    whole = parse_all([stream])
    for size in (1, 2, 3, 5):
        pieces = [stream[i : i + size] for i in range(0, len(stream), size)]
        assert parse_all(pieces) == whole
    assert [e.data for e in whole] == ["héllo", "wörld"]


def test_event_is_dispatched_as_soon_as_its_blank_line_arrives():
    parser = SSEParser()
    assert parser.feed(b"data: x\n") == []
    assert parser.feed(b"\n") == [SSEEvent("x")]


def test_a_lone_cr_at_a_chunk_end_waits_for_the_next_chunk():
    parser = SSEParser()
    assert parser.feed(b"data: x\r") == []
    # The LF completes the CRLF: one line end, not two, so no event yet.
    assert parser.feed(b"\n") == []
    assert parser.feed(b"\r\n") == [SSEEvent("x")]


def test_fields_comments_id_and_bom_and_retry_ignored():
    stream = (
        b"\xef\xbb\xbf: comment\n"
        b"id: 7\nretry: 1500\nretry: soon\nevent: update\ndata:no-space\n"
        b"unknown: ignored\ndata\n\n"
    )
    (event,) = parse_all([stream])
    assert event == SSEEvent("no-space\n", "update", "7")


def test_event_name_resets_but_id_persists():
    events = parse_all([b"event: a\nid: 1\ndata: x\n\ndata: y\n\n"])
    assert [(e.event, e.id) for e in events] == [("a", "1"), ("message", "1")]


def test_blank_lines_without_data_dispatch_nothing():
    assert parse_all([b"\n\n: ping\n\nevent: x\n\n"]) == []


def test_close_dispatches_a_last_event_that_lost_its_blank_line():
    parser = SSEParser()
    assert parser.feed(b'data: {"status": "COMPLETED"}') == []
    assert parser.close() == [SSEEvent('{"status": "COMPLETED"}')]


def drain(q: queue.Queue) -> list[StreamItem]:
    items = []
    while not q.empty():
        items.append(q.get_nowait())
    return items


def test_pump_puts_events_then_one_end():
    q: queue.Queue = queue.Queue()
    pump(lambda: iter([b"data: 1\n\nda", b"ta: 2\n\n"]), q, threading.Event())
    items = drain(q)
    assert [i.kind for i in items] == ["event", "event", "end"]
    assert [i.event.data for i in items[:2]] == ["1", "2"]
    assert items[-1].error is None


def test_pump_reports_a_failing_stream_and_closes_it():
    closed = []

    def chunks():
        try:
            yield b"data: 1\n\n"
            raise OSError("connection reset")
        finally:
            closed.append(True)

    q: queue.Queue = queue.Queue()
    pump(chunks, q, threading.Event())
    items = drain(q)
    assert [i.kind for i in items] == ["event", "end"]
    assert isinstance(items[-1].error, OSError)
    assert closed == [True]


def test_pump_stops_when_asked_and_releases_the_stream():
    stop = threading.Event()
    closed = []

    def chunks():
        try:
            yield b"data: 1\n\n"
            stop.set()  # the reader gave up while the server kept talking
            while True:
                yield b": keepalive\n\n"
        finally:
            closed.append(True)

    q: queue.Queue = queue.Queue()
    pump(chunks, q, stop)
    items = drain(q)
    assert [i.kind for i in items] == ["event", "end"]
    assert closed == [True]


def test_pump_reports_a_stream_that_cannot_open():
    def chunks():
        raise ConnectionRefusedError("nope")

    q: queue.Queue = queue.Queue()
    pump(chunks, q, threading.Event())
    (item,) = drain(q)
    assert item.kind == "end" and isinstance(item.error, ConnectionRefusedError)


def test_a_line_that_never_ends_is_refused_at_the_cap_in_linear_time():
    parser = SSEParser()
    chunk = b"data: " + b"x" * (64 * 1024)
    fed = 0
    with pytest.raises(SSEError, match="line longer"):
        while True:
            parser.feed(chunk)
            fed += len(chunk)
            assert fed <= MAX_LINE_CHARS + len(chunk), "the cap was not applied"
    # Each chunk is scanned once: the parser never holds more than the cap.
    assert len(parser._buffer) <= MAX_LINE_CHARS


def test_a_long_line_within_the_cap_still_parses():
    data = "y" * (MAX_LINE_CHARS // 2)
    encoded = f"data: {data}\n\n".encode()
    pieces = [encoded[i : i + 65536] for i in range(0, len(encoded), 65536)]
    assert parse_all(pieces) == [SSEEvent(data)]


def test_an_event_of_endless_data_lines_is_refused():
    parser = SSEParser()
    line = b"data: " + b"z" * 1000 + b"\n"
    with pytest.raises(SSEError, match="event larger"):
        for _ in range(MAX_EVENT_CHARS // 1000 + 2):
            parser.feed(line)


def test_the_pump_ends_with_the_parsers_error():
    q: queue.Queue = queue.Queue()
    endless = (b"data: " + b"x" * 65536 for _ in range(10_000))
    pump(lambda: endless, q, threading.Event())
    (item,) = drain(q)
    assert item.kind == "end" and isinstance(item.error, SSEError)


def test_a_pump_ahead_of_its_reader_waits_and_still_stops():
    q: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    produced = []

    def chunks():
        for n in range(1000):
            produced.append(n)
            yield f"data: {n}\n\n".encode()

    worker = threading.Thread(target=pump, args=(chunks, q, stop))
    worker.start()
    while len(produced) < 3:  # the queue is full: the producer is held up
        worker.join(0.01)
    stop.set()
    worker.join(10)
    assert not worker.is_alive()
    assert len(produced) < 1000
    items = drain(q)
    assert items[-1].kind == "end"
