"""What every command of the CLI shares: where lines go, the server and key, the local server.

Results go to standard output, or to standard error when standard output carries the image
(``-o -``); on a terminal shared with the live progress board they go through the board, so
its in-place redraw is never torn.  Messages always go through the board (standard error).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any, TextIO

from flux_outpaint import settings
from flux_outpaint.errors import ConfigError
from flux_outpaint.queue_client import FalQueueClient

from .progress import ProgressBoard

LOCAL_KEY = "local-key"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
PROG_NAME = "flux-outpaint"


class Console:
    """Results on stdout (stderr when stdout carries the image), messages via the board."""

    def __init__(self, args: Any, board: ProgressBoard) -> None:
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


def server_and_key(args: Any, server: Any) -> tuple[str, str]:
    """The queue's base URL and the key (ConfigError with one line if either is missing)."""
    if server is not None:
        return server.base_url, LOCAL_KEY
    env = dict(os.environ)
    if args.base_url:
        env["FAL_QUEUE_URL"] = args.base_url
    return settings.queue_base_url(env), settings.load_api_key(env)


def isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def make_client(args: Any, server: Any) -> FalQueueClient:
    return FalQueueClient(*server_and_key(args, server))


def local_server() -> Any:
    """The local fal-compatible server, in this process (``--local``: trying things offline)."""
    try:
        import flux_outpaint_fal_local  # only --local needs it
    except ImportError:
        raise ConfigError(
            "--local needs the local server package flux_outpaint_fal_local (a checkout of "
            "flux-outpaint with numpy and Pillow)"
        ) from None
    return flux_outpaint_fal_local.start_server()


class BoardLog(logging.Handler):
    """-v: the core's log lines (retries and their reasons) through the board."""

    def __init__(self, board: ProgressBoard) -> None:
        super().__init__(logging.INFO)
        self.board = board

    def emit(self, record: logging.LogRecord) -> None:
        self.board.say(f"  {record.getMessage()}")
