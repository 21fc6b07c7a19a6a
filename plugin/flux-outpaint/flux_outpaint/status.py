"""One vocabulary for where a job is, shared by the client, the pipeline, the plug-in and the CLI.

    Phase           where one job is on our side: ENCODING → UPLOADING → SUBMITTING → QUEUED
                    → RUNNING → DOWNLOADING → DONE, or FAILED / CANCELLED; ``label`` is the
                    text people see
    Queued          what fal's status answer says, parsed in one place (``parse_status``):
    InProgress      IN_QUEUE (with the queue position), IN_PROGRESS (new log lines) and
    Completed       COMPLETED (a failed run is COMPLETED too; its error shows at the result)
    Progress        what the pipeline reports: a phase, the queue position, a log line, the
                    time since the job started, and the request id once there is one
    RequestHandle   a submitted request: its id and the status, result and cancel URLs

Pure data and parsing: no network, no storage, so the journal and the client can both use it.
Every string a status answer carries (log lines, the error) is server text: ``parse_status``
hands it on only through ``errors.clean``, with the key the tracker was given.
"""

from __future__ import annotations

import enum
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import clean

__all__ = [
    "REQUEST_ID",
    "Completed",
    "InProgress",
    "LogTracker",
    "MAX_LOG_CHARS",
    "MAX_QUEUE_POSITION",
    "MAX_REMEMBERED_LOGS",
    "Phase",
    "Progress",
    "Queued",
    "RequestHandle",
    "Status",
    "parse_status",
]

# Request ids become file names in the result cache: accept only what a UUID can contain.
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class Phase(str, enum.Enum):
    ENCODING = "encoding"
    UPLOADING = "uploading"
    SUBMITTING = "submitting"
    QUEUED = "queued"
    RUNNING = "running"
    DOWNLOADING = "downloading"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Phase.ENCODING: "Encoding the reference",
    Phase.UPLOADING: "Uploading the reference",
    Phase.SUBMITTING: "Sending the request",
    Phase.QUEUED: "Waiting in fal's queue",
    Phase.RUNNING: "Generating",
    Phase.DOWNLOADING: "Downloading the result",
    Phase.DONE: "Done",
    Phase.FAILED: "Failed",
    Phase.CANCELLED: "Cancelled",
}


@dataclass(frozen=True)
class RequestHandle:
    request_id: str
    status_url: str
    response_url: str
    cancel_url: str


@dataclass(frozen=True)
class Queued:
    position: int | None = None  # requests ahead of this one (0 = next)


@dataclass(frozen=True)
class InProgress:
    logs: tuple[str, ...] = ()  # log lines not reported by an earlier status of this wait


@dataclass(frozen=True)
class Completed:
    logs: tuple[str, ...] = ()
    error: str | None = None  # a failed run is COMPLETED with these; the result has details
    error_type: str | None = None


Status = Queued | InProgress | Completed


@dataclass(frozen=True)
class Progress:
    phase: Phase
    queue_position: int | None = None
    log_line: str | None = None
    elapsed_s: float = 0.0
    request_id: str | None = None

    def describe(self) -> str:
        """One line for a status bar: the phase, the queue position, the seconds so far."""
        text = self.phase.label
        if self.phase is Phase.QUEUED and self.queue_position is not None:
            text += f" (position {self.queue_position + 1})"
        return f"{text}… {int(self.elapsed_s)} s"


# A queue position beyond this is not one (fal's queues are far shorter): shown as unknown,
# so a 90-digit number never reaches a status line.
MAX_QUEUE_POSITION = 1_000_000
# A log line is shown on one status line: longer ones are cut.
MAX_LOG_CHARS = 300
# Log entries remembered to report each once; a window of this many keeps memory bounded
# whatever a server streams (fal's own window is far smaller).
MAX_REMEMBERED_LOGS = 4096


class LogTracker:
    """fal returns logs in a moving window: report each (timestamp, message) once, cleaned.

    ``secrets`` are redacted from every line (and from a completed status's error).
    """

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        self.secrets = secrets
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    def clean(self, text: str) -> str:
        return clean(text, self.secrets, limit=MAX_LOG_CHARS)

    def new(self, logs: object) -> tuple[str, ...]:
        fresh = []
        for entry in logs if isinstance(logs, list) else ():
            if isinstance(entry, Mapping):
                message, stamp = entry.get("message"), entry.get("timestamp", "")
            else:
                message, stamp = entry, ""
            if not isinstance(message, str):
                continue
            line = self.clean(message)
            key = (self.clean(str(stamp)), line)
            if not line or key in self._seen:
                continue
            self._seen[key] = None
            if len(self._seen) > MAX_REMEMBERED_LOGS:
                self._seen.popitem(last=False)
            fresh.append(line)
        return tuple(fresh)


def parse_status(body: Mapping[str, Any], http_status: int | None, logs: LogTracker) -> Status:
    """A status answer (a poll or one stream event) as a value; unknown states are not fatal.

    fal answers 202 while a request is pending and 200 once it has completed, so a body
    without a known ``status`` is judged by the HTTP status it came with.
    """
    state = body.get("status")
    if state == "IN_QUEUE":
        position = body.get("queue_position")
        valid = (
            isinstance(position, int)
            and not isinstance(position, bool)
            and 0 <= position <= MAX_QUEUE_POSITION
        )
        return Queued(position if valid else None)
    fresh = logs.new(body.get("logs"))
    if state == "COMPLETED" or (state != "IN_PROGRESS" and http_status == 200):
        error, error_type = body.get("error"), body.get("error_type")
        return Completed(
            fresh,
            logs.clean(error) if isinstance(error, str) else None,
            logs.clean(error_type) if isinstance(error_type, str) else None,
        )
    return InProgress(fresh)
