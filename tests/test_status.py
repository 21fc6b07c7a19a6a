"""The one status vocabulary: phases and their labels, fal's status answers parsed once."""

from __future__ import annotations

import pytest
from flux_outpaint.status import (
    MAX_REMEMBERED_LOGS,
    REQUEST_ID,
    Completed,
    InProgress,
    LogTracker,
    Phase,
    Progress,
    Queued,
    parse_status,
)


def entry(message: str, stamp: str) -> dict:
    return {"message": message, "level": "INFO", "source": "USER", "timestamp": stamp}


@pytest.mark.parametrize(
    ("body", "http", "expected"),
    [
        ({"status": "IN_QUEUE", "queue_position": 3}, 202, Queued(3)),
        ({"status": "IN_QUEUE"}, 202, Queued(None)),
        ({"status": "IN_QUEUE", "queue_position": -1}, 202, Queued(None)),
        ({"status": "IN_QUEUE", "queue_position": True}, 202, Queued(None)),
        ({"status": "IN_QUEUE", "queue_position": 10**90}, 202, Queued(None)),
        ({"status": "IN_QUEUE", "queue_position": 1_000_000}, 202, Queued(1_000_000)),
        ({"status": "IN_PROGRESS", "logs": None}, 202, InProgress(())),
        ({"status": "IN_PROGRESS", "logs": [entry("a", "1")]}, 202, InProgress(("a",))),
        ({"status": "COMPLETED", "logs": []}, 200, Completed()),
        (
            {"status": "COMPLETED", "error": "Invalid status code: 422", "error_type": "x"},
            200,
            Completed((), "Invalid status code: 422", "x"),
        ),
        ({"status": "COMPLETED", "error": 5}, 200, Completed()),
        # an unknown state: fal answers 200 only once a request has completed
        ({"status": "SOMETHING_NEW"}, 200, Completed()),
        ({"status": "SOMETHING_NEW"}, 202, InProgress(())),
        ({}, None, InProgress(())),
    ],
)
def test_parse_status(body, http, expected):
    assert parse_status(body, http, LogTracker()) == expected


def test_logs_in_a_moving_window_are_reported_once():
    logs = LogTracker()
    first = parse_status(
        {"status": "IN_PROGRESS", "logs": [entry("a", "1"), entry("b", "2")]}, 202, logs
    )
    second = parse_status(
        {
            "status": "COMPLETED",
            "logs": [entry("b", "2"), entry("c", "3"), {"message": 7}, "plain"],
        },
        200,
        logs,
    )
    assert first == InProgress(("a", "b"))
    assert second == Completed(("c", "plain"))


def test_every_phase_has_a_label():
    for phase in Phase:
        assert phase.label and phase.label[0].isupper()
    assert Phase("queued") is Phase.QUEUED


@pytest.mark.parametrize(
    ("progress", "text"),
    [
        (Progress(Phase.QUEUED, 0, elapsed_s=3.9), "Waiting in fal's queue (position 1)… 3 s"),
        (Progress(Phase.QUEUED, None, elapsed_s=0.2), "Waiting in fal's queue… 0 s"),
        (Progress(Phase.RUNNING, None, "step", 12.0), "Generating… 12 s"),
    ],
)
def test_progress_describe(progress, text):
    assert progress.describe() == text


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("0b4e2b1c-6a5f-4c55-9c39-8f0d2a3b9e11", True),
        ("r1", True),
        ("", False),
        ("../etc/passwd", False),
        ("a/b", False),
        (".hidden", False),
        ("x" * 129, False),
    ],
)
def test_request_id_pattern(value, ok):
    assert bool(REQUEST_ID.fullmatch(value)) is ok


def test_log_lines_and_errors_are_cleaned_and_redacted():
    key = "key-id-1234:s3cret-abcdef"
    tracker = LogTracker(("key-id-1234:s3cret-abcdef", "s3cret-abcdef"))
    body = {
        "status": "COMPLETED",
        "logs": [
            {"message": f"auth {key}\x1b]0;pwned\x07\nin.png -> /tmp/x.png", "timestamp": "1"},
            {"message": "\x1b[2J", "timestamp": "2"},  # nothing left to show: dropped
        ],
        "error": "failed\x1b[31m s3cret-abcdef",
        "error_type": "runner\nerror",
    }
    status = parse_status(body, 200, tracker)
    assert status == Completed(("auth *** in.png -> /tmp/x.png",), "failed ***", "runner error")


def test_the_log_window_remembered_is_bounded():
    tracker = LogTracker()
    for n in range(MAX_REMEMBERED_LOGS + 10):
        assert tracker.new([{"message": f"line {n}", "timestamp": str(n)}]) == (f"line {n}",)
    assert len(tracker._seen) == MAX_REMEMBERED_LOGS
    assert tracker.new([{"message": "x" * 1000, "timestamp": "t"}])[0].endswith("…")
