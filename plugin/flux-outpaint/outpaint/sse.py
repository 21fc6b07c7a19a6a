"""Server-sent events: an incremental parser, and a pump that feeds events to a queue.

The parser follows the WHATWG event-stream rules that matter here: UTF-8, lines ending in
LF, CR or CRLF (also split across chunks), ``field: value`` with one optional space after the
colon, comment lines starting with ``:``, several ``data`` lines joined by LF, and an event
dispatched at a blank line.  fal's status stream sends one JSON status per ``data`` line and
closes after COMPLETED, so ``close()`` also dispatches a final event that lost its blank line.

The pump runs in a worker thread so that whoever waits on the queue can look at a cancel flag
and a deadline between events, however long the server stays silent.
"""

from __future__ import annotations

import codecs
import contextlib
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["SSEEvent", "SSEParser", "StreamItem", "pump"]


@dataclass(frozen=True)
class SSEEvent:
    data: str
    event: str = "message"
    id: str | None = None


class SSEParser:
    """Feed bytes as they arrive; get back the events completed so far."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._data: list[str] = []
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
        self._buffer += text
        events: list[SSEEvent] = []
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                break
            line, rest = cut
            self._buffer = rest
            self._line(line, events)
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
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value

    def _dispatch(self, events: list[SSEEvent]) -> None:
        if self._data:
            events.append(SSEEvent("\n".join(self._data), self._event or "message", self._id))
        self._data = []
        self._event = ""


def _line_end(buffer: str) -> tuple[str, str] | None:
    """Split off the first complete line.  A trailing CR may be half of a CRLF: wait for more."""
    for i, ch in enumerate(buffer):
        if ch == "\n":
            return buffer[:i], buffer[i + 1 :]
        if ch == "\r":
            if i + 1 == len(buffer):
                return None
            skip = 2 if buffer[i + 1] == "\n" else 1
            return buffer[:i], buffer[i + skip :]
    return None


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
    try:
        source = iter(chunks())
        for chunk in source:
            if stop.is_set():
                break
            for event in parser.feed(chunk):
                out.put(StreamItem("event", event))
        else:
            for event in parser.close():
                out.put(StreamItem("event", event))
    except BaseException as exc:  # noqa: BLE001 - the reader decides what it means
        out.put(StreamItem("end", error=exc))
        return
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            # A generator holding an open response releases it now; the stream is being
            # abandoned, so a failure while closing it changes nothing.
            with contextlib.suppress(Exception):
                close()
    out.put(StreamItem("end"))
