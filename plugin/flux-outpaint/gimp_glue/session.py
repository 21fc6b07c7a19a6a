"""What both procedures need to talk to fal: the key, the journal and the worker.

The key comes from FAL_KEY or the key file; an interactive run asks for one when neither is
set.  It is added to ``secrets`` as soon as it is known, so that no message can carry it.
Network work always runs in a ``worker.Background`` thread with its own client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypedDict, TypeVar

from flux_outpaint import settings
from flux_outpaint.errors import ConfigError
from gi.repository import Gimp

from . import worker

_T = TypeVar("_T")

if TYPE_CHECKING:  # the network half is imported when a job starts (see gimp_glue)
    import threading

    import httpx
    from flux_outpaint.journal import Journal
    from flux_outpaint.queue_client import FalQueueClient


def interactive(run_mode: Gimp.RunMode) -> bool:
    return bool(run_mode == Gimp.RunMode.INTERACTIVE)


def api_key(run_mode: Gimp.RunMode, secrets: list[str]) -> str:
    """The configured key; interactively, ask for one when none is configured."""
    try:
        key = settings.load_api_key()
    except ConfigError:
        if not interactive(run_mode):
            raise
        from .dialog import ask_api_key  # Gtk only where a window may open

        answer = ask_api_key()
        if answer is None:
            raise worker.UserCancelled("Cancelled") from None
        key, remember = answer
        secrets.append(key)
        if remember:
            settings.save_api_key(key)
    secrets.append(key)
    return key


def journal() -> Journal:
    from flux_outpaint.journal import Journal, default_journal_path

    return Journal(default_journal_path())


NetworkWork = Callable[["FalQueueClient", worker.Report, "threading.Event"], _T]


class Deadline(TypedDict, total=False):
    """The core's ``deadline_s`` argument, given only when one is configured (else the core's
    default holds)."""

    deadline_s: float


def base_url() -> str:
    return settings.queue_base_url()


def start(
    key: str,
    url: str,
    work: NetworkWork[_T],
    transport: httpx.HTTPTransport | None = None,
    count: int = 1,
) -> worker.Background[_T]:
    """Run ``work(client, report, cancel)`` in a worker thread with a client of its own
    (over ``transport`` when given: an ``httpx`` transport no other client uses); ``count``:
    the takes it runs, for the status line."""
    from flux_outpaint.queue_client import FalQueueClient

    def run(report: worker.Report, cancel: threading.Event) -> _T:
        client = FalQueueClient(url, key, transport=transport)
        try:
            return work(client, report, cancel)
        finally:
            client.close()

    return worker.Background(run, count).start()
