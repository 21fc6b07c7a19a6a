"""Bringing back a paid result: the one recovery service of the CLI and the plug-in.

* ``choose`` — which request: the one asked for by id, else "the latest" by one rule for both
  front ends: the newest request of that front end whose result may still be waiting for its
  output (submitted, completed, downloaded, unplaced); when every one was placed, the newest
  placed one (placing it again is what "recover the last result" means then).
* ``members`` — a take of several comes back with every take of its run that may have a
  result.
* ``result`` / ``fetch`` — the cache first, checked like a fresh download (whole, a sane
  size; ``journal.cached_result`` already refuses links and oversized files); a missing or
  damaged copy is fetched again by id from the server that took the request, never from
  another one (a request made with another base URL is named with that server instead), and
  stored back.  Nothing here ever submits.
* ``worth_a_hint`` — whether "recover with …" is worth printing after a failure: only for a
  journaled request whose result can still come back (not one fal made nothing for, not
  one cancelled on fal before it finished).

Records written by a newer journal format are refused with one line naming the version
(``JournalEntry.check_version``), never misread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from . import download, imageinfo, settings
from .errors import (
    AuthError,
    ContentPolicyError,
    InputError,
    OutpaintError,
    ResultError,
    ResultUnavailableError,
    ServerError,
    ValidationError,
    about_request,
    clean,
)
from .i18n import _
from .journal import Journal, JournalEntry
from .journal_records import State
from .queue_client import FalQueueClient
from .retry import DEFAULT_DEADLINE_S
from .status import Completed, Queued

__all__ = [
    "NO_RESULT",
    "NothingToRecover",
    "OtherServerError",
    "choose",
    "fetch",
    "members",
    "result",
    "worth_a_hint",
]

# fal said the job itself produced nothing usable: there is nothing to recover.
NO_RESULT = (ContentPolicyError, ValidationError, ServerError, ResultUnavailableError, AuthError)
# The result may still be waiting for its output.
_UNPLACED = frozenset({State.SUBMITTED, State.COMPLETED, State.DOWNLOADED, State.UNPLACED})


class NothingToRecover(InputError):
    """No request matches (an unknown id, or an empty journal)."""


class OtherServerError(OutpaintError):
    """The request was made on another server than the one configured now."""


def choose(journal: Journal, wanted: str | None, tool: str) -> JournalEntry:
    """The entry of ``wanted``, else the latest of front end ``tool`` ("cli", "gimp")."""
    if wanted is not None:
        entry = journal.find(wanted)
        if entry is None:
            raise NothingToRecover(
                _("The journal ({path}) has no request {request_id}").format(
                    path=journal.path, request_id=wanted
                )
            )
        entry.check_version()
        return entry
    found = latest(journal.entries(), tool)
    if found is None:
        raise NothingToRecover(
            _("Nothing to recover: the journal ({path}) has no result").format(path=journal.path)
        )
    return found


def latest(entries: Iterable[JournalEntry], tool: str) -> JournalEntry | None:
    """The rule for "the latest" (see the module): newest by its latest record."""
    ours = [
        e for e in entries if e.tool == tool and e.newer_version is None and e.state.may_have_result
    ]
    unplaced = [e for e in ours if e.state in _UNPLACED]
    pool = unplaced or [e for e in ours if e.state is State.PLACED]
    return max(pool, key=lambda e: e.order, default=None)


def members(entry: JournalEntry, entries: Iterable[JournalEntry]) -> list[JournalEntry]:
    """The takes of ``entry``'s run that may have a result, by take number (``entry`` itself
    whatever its state: someone asked for it); just ``[entry]`` for a single run."""
    take = entry.take
    if take is None:
        return [entry]
    found = [
        e
        for e in entries
        if e.take is not None
        and e.take.run == take.run
        and e.newer_version is None
        and (e.state.may_have_result or e.request_id == entry.request_id)
    ]
    return sorted(found, key=lambda e: (e.take.number if e.take else 0, e.order))


def cached(journal: Journal, entry: JournalEntry) -> tuple[bytes, str] | None:
    """The cached result if it is whole and of a size a result can have; else None."""
    got = journal.cached_result(entry.request_id)
    if got is None:
        return None
    try:
        imageinfo.check_result(got[0], None)
    except ResultError:
        return None  # damaged in the cache (or kept by an older version): fetch it again
    return got


def result(
    journal: Journal,
    entry: JournalEntry,
    client_factory: Callable[[], FalQueueClient],
    **fetch_options: float | threading.Event | Callable[[], float] | None,
) -> tuple[bytes, str]:
    """The cached result, else fetched by id (a client is made only then, and closed)."""
    entry.check_version()
    got = cached(journal, entry)
    if got is not None:
        return got
    client = client_factory()
    try:
        return fetch(entry, client, journal, **fetch_options)  # type: ignore[arg-type]
    finally:
        client.close()


def fetch(
    entry: JournalEntry,
    client: FalQueueClient,
    journal: Journal,
    *,
    deadline_s: float = DEFAULT_DEADLINE_S,
    cancel: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[bytes, str]:
    """The image of a paid request from the server that took it.  Never submits.

    Asks for the request's status first, so one still queued or running gives a clear
    message instead of a confusing result error.  The image is checked like a fresh one
    before it is stored (and marked ``downloaded``) and handed back; whether it fits the plan
    (``entry.expected_output``) is the caller's check."""
    entry.check_version()
    request_id = entry.request_id
    journal = journal.with_secrets(client.secrets)
    handle = entry.handle if entry.handle is not None else client.handle_for(request_id)
    _check_server(entry, client)
    deadline = clock() + deadline_s
    with about_request(request_id):
        try:
            status = client.status(handle, deadline=deadline, cancel=cancel)
            if not isinstance(status, Completed):
                still = (
                    _("Request {request_id} is still queued on fal; try again once it has finished")
                    if isinstance(status, Queued)
                    else _(
                        "Request {request_id} is still running on fal; "
                        "try again once it has finished"
                    )
                )
                raise ResultUnavailableError(still.format(request_id=request_id))
            result_json = client.result(handle, deadline=deadline, cancel=cancel)
            blob, content_type = client.download(result_json, deadline=deadline, cancel=cancel)
            info = imageinfo.check_result(blob, None)
            blob = imageinfo.strip_text(blob)  # no server text is kept or handed on
        except OutpaintError:
            raise
        except Exception as exc:  # every failure names the request
            raise OutpaintError(
                _("Unexpected error ({kind}): {problem}").format(
                    kind=type(exc).__name__, problem=exc
                ),
                request_id=request_id,
            ) from exc
        try:
            path = journal.store_result(request_id, blob, info.content_type)
            journal.mark(request_id, State.DOWNLOADED, result_path=str(path), recovered=True)
        except OSError:
            pass  # handed back all the same
    return blob, content_type


def _check_server(entry: JournalEntry, client: FalQueueClient) -> None:
    """The key goes only to the server configured now: a request another server took is
    named with that server, so the person can point the client there."""
    if entry.handle is None:
        return
    try:
        took = download.origin(entry.handle.status_url)
        ours = {
            download.origin(client.base_url),
            download.origin(settings.rest_base_url(client.base_url)),
        }
    except ValueError:
        return
    if took not in ours:
        where = clean(took.rsplit(":", 1)[0] if took.endswith((":80", ":443")) else took)
        raise OtherServerError(
            f"Request {entry.request_id} was made on {where}, not on {client.base_url}: "
            f"recover it with --base-url {where} (or FAL_QUEUE_URL)",
            request_id=entry.request_id,
        )


def worth_a_hint(exc: BaseException, entry: JournalEntry | None) -> bool:
    """Whether "recover with …" may help after ``exc``: the request is in the journal and
    its result may still exist (fal finished it, or nothing says it will not)."""
    if entry is None or isinstance(exc, NO_RESULT):
        return False
    if entry.completed:
        return True
    # Failed on our side (a broken answer, the network): fal may still finish it.  Cancelled
    # on fal before it finished: nothing will come.
    return entry.state is not State.CANCELLED
