"""Server-sent events: an incremental parser, and a pump that feeds events to a queue.

The parser follows the WHATWG event-stream rules that matter here: UTF-8, lines ending in
LF, CR or CRLF (also split across chunks), ``field: value`` with one optional space after the
colon, comment lines starting with ``:``, several ``data`` lines joined by LF, and an event
dispatched at a blank line.  fal's status stream sends one JSON status per ``data`` line and
closes after COMPLETED, so ``close()`` also dispatches a final event that lost its blank line.

Parsing is linear in the bytes received: each chunk is scanned once for line ends, and a
line that never ends is refused at ``MAX_LINE_CHARS`` (as is an event whose ``data`` lines add
up to more than ``MAX_EVENT_CHARS``) with ``SSEError``, so a hostile stream costs neither
quadratic time nor unbounded memory.

The pump runs in a worker thread so that whoever waits on the queue can look at a cancel flag
and a deadline between events, however long the server stays silent.  Its queue is bounded
too: a producer far ahead of the reader waits (and still notices ``stop``).
"""

from __future__ import annotations

import codecs
import contextlib
import queue
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = [
    "MAX_EVENT_CHARS",
    "MAX_LINE_CHARS",
    "QUEUE_SIZE",
    "SSEError",
    "SSEEvent",
    "SSEParser",
    "StreamItem",
    "pump",
]

# fal's status events are one JSON status per line, a few kilobytes with logs; the same cap
# as any other JSON answer (download.MAX_JSON_BYTES).
MAX_LINE_CHARS = 4 * 1024 * 1024
MAX_EVENT_CHARS = MAX_LINE_CHARS
# Events parsed but not yet taken by the reader.
QUEUE_SIZE = 64
# How often a pump blocked on a full queue looks at ``stop``.
_PUT_POLL_S = 0.1
_LINE_END = re.compile(r"\r\n|\r|\n")


class SSEError(ValueError):
    """The stream breaks the limits above: not a status stream worth reading on."""


@dataclass(frozen=True)
class SSEEvent:
    data: str
    event: str = "message"
    id: str | None = None


class SSEParser:
    """Feed bytes as they arrive; get back the events completed so far."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""  # the line not yet ended; never holds a line end but a final CR
        self._data: list[str] = []
        self._data_chars = 0
        self._event = ""
        self._id: str | None = None
        self._bom_checked = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        return self._consume(self._decoder.decode(chunk))

    def close(self) -> list[SSEEvent]:
        """End of stream: finish a last line without terminator and a last undispatched event."""
        events = self._consume(self._decoder.decode(b"", final=True))
        if self._buffer:
            self._line(self._buffer.rstrip("\r"), events)
            self._buffer = ""
        self._dispatch(events)
        return events

    def _consume(self, text: str) -> list[SSEEvent]:
        if not self._bom_checked and text:
            self._bom_checked = True
            text = text.removeprefix("\ufeff")
        if not text:
            return []
        # Only the new text can hold a line end (or the CR the buffer may end with).
        scan_from = max(len(self._buffer) - 1, 0)
        if len(self._buffer) + len(text) > MAX_LINE_CHARS and not _LINE_END.search(text):
            raise SSEError(f"an event-stream line longer than {MAX_LINE_CHARS} characters")
        buffer = self._buffer + text
        events: list[SSEEvent] = []
        start = 0
        for match in _LINE_END.finditer(buffer, scan_from):
            if match.group() == "\r" and match.end() == len(buffer):
                break  # may be half of a CRLF: wait for the next chunk
            self._line(buffer[start : match.start()], events)
            start = match.end()
        self._buffer = buffer[start:]
        if len(self._buffer) > MAX_LINE_CHARS:
            raise SSEError(f"an event-stream line longer than {MAX_LINE_CHARS} characters")
        return events

    def _line(self, line: str, events: list[SSEEvent]) -> None:
        if line == "":
            self._dispatch(events)
            return
        if line.startswith(":"):
            return  # comment, e.g. the keep-alive
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data_chars += len(value) + 1
            if self._data_chars > MAX_EVENT_CHARS:
                raise SSEError(f"an event larger than {MAX_EVENT_CHARS} characters")
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value

    def _dispatch(self, events: list[SSEEvent]) -> None:
        if self._data:
            events.append(SSEEvent("\n".join(self._data), self._event or "message", self._id))
        self._data = []
        self._data_chars = 0
        self._event = ""


@dataclass(frozen=True)
class StreamItem:
    """What the pump puts on its queue: an event, then exactly one final ``end`` item."""

    kind: str  # "event" | "end"
    event: SSEEvent | None = None
    error: BaseException | None = None  # set on an ``end`` caused by a failure


def pump(
    chunks: Callable[[], Iterable[bytes]],
    out: queue.Queue[StreamItem],
    stop: threading.Event,
) -> None:
    """Parse ``chunks()`` into ``out`` until the stream ends, fails, or ``stop`` is set.

    Meant as a thread target.  Always finishes with one ``StreamItem("end")``, carrying the
    exception if the stream failed, so the reader never waits on a dead producer.
    """
    parser = SSEParser()
    source = None

    def put(item: StreamItem) -> bool:
        """Wait for room, unless the reader has gone; False once ``stop`` is set."""
        while not stop.is_set():
            try:
                out.put(item, timeout=_PUT_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    try:
        source = iter(chunks())
        for chunk in source:
            if stop.is_set():
                break
            for event in parser.feed(chunk):
                if not put(StreamItem("event", event)):
                    break
        else:
            for event in parser.close():
                put(StreamItem("event", event))
    except BaseException as exc:  # noqa: BLE001 - the reader decides what it means
        _put_end(out, StreamItem("end", error=exc), stop)
        return
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            # A generator holding an open response releases it now; the stream is being
            # abandoned, so a failure while closing it changes nothing.
            with contextlib.suppress(Exception):
                close()
    _put_end(out, StreamItem("end"), stop)


def _put_end(out: queue.Queue[StreamItem], item: StreamItem, stop: threading.Event) -> None:
    """The final item always arrives: it waits for room while the reader reads, and once the
    reader has gone (``stop``) it replaces a stale event."""
    while not stop.is_set():
        try:
            out.put(item, timeout=_PUT_POLL_S)
            return
        except queue.Full:
            continue
    while True:
        try:
            out.put_nowait(item)
            return
        except queue.Full:
            with contextlib.suppress(queue.Empty):
                out.get_nowait()
