"""Where the CLI's lines go: results, messages, the core's log lines.

Results go to standard output, or to standard error when standard output carries the image
(``-o -``); on a terminal shared with the live progress board they go through the board, so
its in-place redraw is never torn.  Messages always go through the board (standard error).
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, TextIO

from .args import Options
from .progress import ProgressBoard


class Console:
    """Results on stdout (stderr when stdout carries the image), messages via the board."""

    def __init__(self, args: Options, board: ProgressBoard) -> None:
        self.args, self.board = args, board
        self.out: TextIO = sys.stderr if args.stdout_is_data else sys.stdout

    def result(self, text: str, record: dict[str, Any]) -> None:
        if self.args.json:
            self._print(json.dumps(record))
        elif not self.args.quiet:
            self._print(text)

    def _print(self, text: str) -> None:
        # On a terminal shared with the live board, a line printed past the board would tear
        # its redraw: such lines go through the board, above its lines.
        if self.out is sys.stderr or (self.board.live and isatty(sys.stdout)):
            self.board.say(text, always=True)
        else:
            print(text, file=self.out, flush=True)

    def error(self, text: str) -> None:
        self.board.say(text, always=True)

    def not_done(
        self, name: str, status: str, message: str, request_ids: list[str] | None = None
    ) -> None:
        """With --json, one line for an input that failed, was skipped or was cancelled
        (``status``), like the line a written input gets; the message itself goes to
        standard error whatever the format (the caller prints it)."""
        if self.args.json:
            record = {"input": name, "ok": False, "status": status, "error": message}
            if request_ids:
                record["request_ids"] = list(request_ids)
            self._print(json.dumps(record))


def isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class BoardLog(logging.Handler):
    """-v: the core's log lines (retries and their reasons) through the board."""

    def __init__(self, board: ProgressBoard) -> None:
        super().__init__(logging.INFO)
        self.board = board

    def emit(self, record: logging.LogRecord) -> None:
        self.board.say(f"  {record.getMessage()}")
