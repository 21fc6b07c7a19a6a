"""The progress board: one line per input redrawn in place on a terminal, plain lines in a
log, messages printed above the live lines, server text stripped of control characters."""

from __future__ import annotations

import io
import re

from flux_outpaint.status import Phase
from flux_outpaint_cli.progress import COMPOSING, READING, WRITING, ProgressBoard


def screen(raw: str) -> list[str]:
    """What a terminal shows after ``raw``: cursor-up (ESC[nF), erase (ESC[2K, ESC[J)."""
    rows: list[str] = []
    y = 0
    for token in re.split(r"(\x1b\[\d*[FKJ]|\n)", raw):
        if not token:
            continue
        if token == "\n":
            y += 1
        elif token.startswith("\x1b[") and token.endswith("F"):
            y -= int(token[2:-1] or 1)
        elif token == "\x1b[J":
            del rows[y:]
        elif token == "\x1b[2K":
            if y < len(rows):
                rows[y] = ""
        else:
            while len(rows) <= y:
                rows.append("")
            rows[y] = token
    return [r for r in rows if r]


def test_live_board_keeps_one_line_per_input_and_messages_above():
    out = io.StringIO()
    board = ProgressBoard(["a.jpg", "b.jpg"], stream=out, live=True)
    board.update("a.jpg", READING)
    board.update("b.jpg", Phase.QUEUED, queue_position=2, request_id="req-b")
    board.say("a.jpg: a note")
    board.update("a.jpg", Phase.RUNNING, note="working \x1b]0;title\x07 hard")
    board.update("a.jpg", COMPOSING)
    board.update("b.jpg", WRITING)
    board.finish("a.jpg", True, "-> a-outpaint.png")
    shown = screen(out.getvalue())
    assert shown[0] == "a.jpg: a note"
    assert len(shown) == 3
    assert shown[1].startswith("a.jpg") and "done" in shown[1] and "a-outpaint.png" in shown[1]
    assert shown[2].startswith("b.jpg") and "writing" in shown[2] and "req-b" in shown[2]
    assert "\x07" not in out.getvalue() and "\x1b]" not in out.getvalue()  # no title change


def test_plain_log_has_one_line_per_change_and_shows_the_request_id():
    out = io.StringIO()
    board = ProgressBoard(["a.png"], stream=out, live=False)
    board.update("a.png", READING)
    board.update("a.png", Phase.QUEUED, request_id="req-1")
    board.update("a.png", Phase.QUEUED, request_id="req-1")  # no change: no line
    board.update("a.png", Phase.DOWNLOADING)
    board.update("a.png", COMPOSING)
    board.update("a.png", WRITING)
    lines = out.getvalue().splitlines()
    assert [ln.split()[1] for ln in lines] == [
        "reading",
        "queued",
        "downloading",
        "composing",
        "writing",
    ]
    assert "[request req-1]" in lines[1]
    assert "\x1b" not in out.getvalue()


def test_quiet_board_prints_only_what_must_be_said():
    out = io.StringIO()
    board = ProgressBoard(["a.png"], stream=out, live=True, quiet=True)
    board.update("a.png", READING)
    board.say("chatter")
    board.say("a.png: failed", always=True)
    assert out.getvalue() == "a.png: failed\n"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_result_lines_on_a_shared_terminal_go_above_the_live_lines(monkeypatch):
    from types import SimpleNamespace

    from flux_outpaint_cli.console import Console

    terminal = _Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    board = ProgressBoard(["a.png", "b.png"], stream=terminal, live=True)
    board.update("a.png", READING)
    board.update("b.png", READING)
    console = Console(SimpleNamespace(json=False, quiet=False, stdout_is_data=False), board)
    console.result("a.png -> a-outpaint.png", {})
    board.update("b.png", WRITING)
    shown = screen(terminal.getvalue())
    assert shown[0] == "a.png -> a-outpaint.png"
    assert [line.split()[0] for line in shown[1:]] == ["a.png", "b.png"]
    assert "writing" in shown[2]
