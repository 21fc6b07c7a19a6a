"""The per-user journal of submitted requests, and its result cache.

Every submit is billed, so every request id is written down — appended as one JSON line and
fsynced — before anything waits on it.  Later events (completed, downloaded, failed,
cancelled, placed) are appended too.  What a line holds, its states and its format version
are in ``journal_records``; this module stores and reads them.

Several writers at once are normal (GIMP open while a CLI batch runs, on the same journal).
Every append and every compaction holds the journal's lock file (``journal_files.FileLock``:
``O_CREAT | O_EXCL``, the same on Linux, macOS and Windows), so no record is torn or lost.
A crash can at worst cut the last line short; readers skip such a line, and the next append
starts on a fresh line.

The journal stays bounded: each time it grows past another ``COMPACT_STEP_BYTES`` the writer
that crossed the step compacts it (``compact``; also once per process a journal over
``COMPACT_LARGE_BYTES``, as an older version may have left it): every request whose result
may still be unplaced is kept, with the newest ``KEEP_SETTLED`` of the others (placed, failed,
cancelled), and records written by a newer format version are kept as they are.  Kept
records are copied byte for byte; the new file replaces the old one atomically.

Downloaded results are kept in ``results/`` beside the journal (``result_cache``).  The
journal is opened without following links and only as a regular file (``open_nofollow``).
Storage only: nothing here talks to the network (``recovery`` does).

The journal never holds the API key: every string in a record is stripped of control
characters and redacted with the secrets the journal was given (``Journal(path, secrets)``
or ``with_secrets``), and the whole line is redacted once more.  ``ensure_writable`` proves,
before anything is submitted, that the journal and the cache can be written and the disk has
room for the result.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from . import settings
from .errors import StorageError, redact, strip_controls
from .i18n import _
from .journal_files import FileLock, open_nofollow, write_all
from .journal_records import (
    _CORRECTION,
    _ERROR,
    _EVENT,
    _FINISHED,
    _GRAIN,
    _HANDLE,
    _HANDLE_KEYS,
    _ID,
    _NOTE_EVENT,
    _OUTPUT,
    _PURPOSE,
    _RAW,
    _RECOVERED,
    _RESULT_PATH,
    _STATE,
    _STATE_EVENT,
    _SUBMITTED_EVENT,
    _TIME,
    FORMAT_VERSION,
    VERSION_KEY,
    PlanRecord,
    Purpose,
    State,
    TakeOf,
    TooNewError,
    compacted,
    parse_record,
    purpose_from_json,
    record_version,
)
from .result_cache import RESULT_CACHE_MAX_BYTES, RESULT_CACHE_MAX_FILES, ResultCache
from .status import RequestHandle

__all__ = [
    "COMPACT_STEP_BYTES",
    "JOURNAL_FILE_NAME",
    "KEEP_SETTLED",
    "RESULTS_DIR_NAME",
    "RESULT_CACHE_MAX_BYTES",
    "RESULT_CACHE_MAX_FILES",
    "Journal",
    "JournalEntry",
    "default_journal_path",
]

JOURNAL_FILE_NAME = "journal.jsonl"
LOCK_SUFFIX = ".lock"
RESULTS_DIR_NAME = "results"
# Compaction: once per this much growth; settled requests kept (about 2 KB each).
COMPACT_STEP_BYTES = 1024 * 1024
COMPACT_LARGE_BYTES = 4 * COMPACT_STEP_BYTES
KEEP_SETTLED = 200

# Besides the result itself: the journal lines of a few requests and the file system's own
# bookkeeping.
ROOM_MARGIN_BYTES = 1024 * 1024
# Written and removed by ensure_writable: a real write, so a full disk shows up.
_PROBE_BYTES = 4096

# One lock per journal file, shared by every Journal object on it in this process (the
# lock file orders processes; this orders the threads of one).
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()
_LARGE_SEEN: set[str] = set()  # large journals this process has compacted once


def default_journal_path(env: Mapping[str, str] | None = None) -> Path:
    """``$FLUX_OUTPAINT_DATA_DIR/journal.jsonl``, else the platform's per-user data folder."""
    return settings.data_dir(env) / JOURNAL_FILE_NAME


@dataclass(frozen=True)
class JournalEntry:
    """Everything the journal knows about one request, folded from its records in order."""

    request_id: str
    state: State = State.UNKNOWN
    recorded_purpose: Mapping[str, Any] = field(default_factory=dict, repr=False)
    handle: RequestHandle | None = None
    submitted_at: str | None = None
    updated_at: str | None = None
    result_path: str | None = None
    error: str | None = None
    output: str | None = None  # where it was placed (CLI: a path, or "-")
    color_correction: Mapping[str, Any] | None = None
    grain: Mapping[str, Any] | None = None
    completed: bool = False  # fal said it finished at some point (its result existed)
    newer_version: int | None = None  # a record of it came from a newer format version
    order: int = 0  # the position of its latest record in the file

    # Typed on first use: a long journal is folded without parsing every purpose.
    @cached_property
    def purpose(self) -> Purpose:
        return purpose_from_json(self.recorded_purpose)

    @cached_property
    def plan(self) -> PlanRecord | None:
        return PlanRecord.from_json(self.recorded_purpose)

    @property
    def take(self) -> TakeOf | None:
        return self.purpose.take

    @property
    def tool(self) -> str:
        tool = self.recorded_purpose.get("tool")
        return tool if isinstance(tool, str) else ""

    @property
    def expected_output(self) -> tuple[int, int] | None:
        """The output size the plan asked fal for, if the journal recorded it."""
        return None if self.plan is None else self.plan.request_output

    def check_version(self) -> None:
        """TooNewError when a newer version wrote part of this entry (it would be misread)."""
        if self.newer_version is not None:
            raise TooNewError(
                _(
                    "Request {request_id} was journaled by a newer version of flux-outpaint "
                    "(journal format {format}; this version reads up to {supported}): "
                    "recover it with that version"
                ).format(
                    request_id=self.request_id,
                    format=self.newer_version,
                    supported=FORMAT_VERSION,
                ),
                request_id=self.request_id,
            )


class Journal:
    def __init__(self, path: str | os.PathLike[str], secrets: tuple[str, ...] = ()) -> None:
        self.path = Path(path)
        self.results_dir = self.path.parent / RESULTS_DIR_NAME
        self.results = ResultCache(self.results_dir)
        self._secrets = tuple(secrets)
        self._key = os.path.abspath(self.path)
        with _LOCKS_GUARD:
            self._lock = _LOCKS.setdefault(self._key, threading.Lock())
        self._parsed: tuple[tuple[int, int, int], list[JournalEntry]] | None = None

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + LOCK_SUFFIX)

    def with_secrets(self, secrets: tuple[str, ...]) -> Journal:
        """The same journal (same file, same lock), also redacting ``secrets``."""
        merged = tuple(dict.fromkeys((*self._secrets, *secrets)))
        return self if merged == self._secrets else Journal(self.path, merged)

    def ensure_writable(self, room_bytes: int = 0) -> None:
        """StorageError unless the journal and the result cache can be written now and the
        disk has ``room_bytes`` (plus a margin) free for the result."""
        where = self.path.parent
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.results_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(open_nofollow(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND))
            probe = self.results_dir / f".probe.{os.getpid()}.{threading.get_ident()}.tmp"
            fd = open_nofollow(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            try:
                try:
                    write_all(fd, bytes(_PROBE_BYTES))
                finally:
                    os.close(fd)
            finally:
                probe.unlink(missing_ok=True)
            free = shutil.disk_usage(self.results_dir).free
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise StorageError(
                _("Cannot write the journal in {where} ({reason})").format(
                    where=where, reason=reason
                )
            ) from None
        need = room_bytes + ROOM_MARGIN_BYTES
        if free < need:
            raise StorageError(
                _(
                    "Not enough free space in {where} for the result ({free} free, {needed} needed)"
                ).format(where=where, free=_mb(free), needed=_mb(need))
            )

    # -- writing -------------------------------------------------------------------------

    def record_submit(
        self, handle: RequestHandle, purpose: Purpose, plan: PlanRecord | None = None
    ) -> None:
        """Write down a new request id durably; call before waiting on it."""
        flat = {**purpose.to_json(), **(plan.to_json() if plan is not None else {})}
        self._append(
            {
                _EVENT: _SUBMITTED_EVENT,
                _ID: handle.request_id,
                _STATE: State.SUBMITTED.value,
                _HANDLE: {
                    "status_url": handle.status_url,
                    "response_url": handle.response_url,
                    "cancel_url": handle.cancel_url,
                },
                _PURPOSE: flat,
            }
        )

    def mark(
        self,
        request_id: str,
        state: State,
        *,
        error: str | None = None,
        result_path: str | None = None,
        output: str | None = None,
        raw: bool | None = None,
        recovered: bool | None = None,
    ) -> None:
        """Append a state change."""
        extra: dict[str, str | bool | None] = {
            _ERROR: error,
            _RESULT_PATH: result_path,
            _OUTPUT: output,
            _RAW: raw,
            _RECOVERED: recovered,
        }
        record: dict[str, Any] = {_EVENT: _STATE_EVENT, _ID: request_id, _STATE: State(state).value}
        record.update({k: v for k, v in extra.items() if v is not None})
        self._append(record)

    def note_correction(self, request_id: str, correction: Mapping[str, Any]) -> None:
        """Record the colour correction a run applied (recover applies it again)."""
        self._append({_EVENT: _NOTE_EVENT, _ID: request_id, _CORRECTION: dict(correction)})

    def note_grain(self, request_id: str, grain: Mapping[str, Any]) -> None:
        """Record the grain a run drew over the new pixels (recover draws it again)."""
        self._append({_EVENT: _NOTE_EVENT, _ID: request_id, _GRAIN: dict(grain)})

    def store_result(self, request_id: str, blob: bytes, content_type: str) -> Path:
        """Keep a downloaded result beside the journal (see ``ResultCache.store``)."""
        return self.results.store(request_id, blob, content_type)

    def prune_results(
        self, max_files: int | None = None, max_bytes: int | None = None, keep: Path | None = None
    ) -> list[Path]:
        return self.results.prune(max_files, max_bytes, keep)

    def cached_result(self, request_id: str) -> tuple[bytes, str] | None:
        return self.results.get(request_id)

    def _append(self, record: dict[str, Any]) -> None:
        stamped = {
            VERSION_KEY: FORMAT_VERSION,
            _TIME: time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **self._scrub(record),
        }
        line = json.dumps(stamped, ensure_ascii=False, default=str)
        data = (redact(line, self._secrets) + "\n").encode("utf-8")
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._lock, FileLock(self.lock_path):
            fd = open_nofollow(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
            try:
                size = os.fstat(fd).st_size
                # A crash may have cut the previous line short: start ours on a fresh line
                # so that only the broken line is lost, not ours as well.
                if size > 0:
                    os.lseek(fd, -1, os.SEEK_END)
                    if os.read(fd, 1) != b"\n":
                        data = b"\n" + data
                write_all(fd, data)
            finally:
                os.close(fd)
            if self._due(size, size + len(data)):
                # best effort: the records are written; the next step tries again
                with contextlib.suppress(OSError):
                    self._compact_locked(KEEP_SETTLED)

    def _due(self, before: int, after: int) -> bool:
        """Compaction is due when the journal grows past another step, and once per process
        for a journal already larger than ``COMPACT_LARGE_BYTES`` (one an older version
        left, which never compacted)."""
        if before // COMPACT_STEP_BYTES != after // COMPACT_STEP_BYTES:
            return True
        if after > COMPACT_LARGE_BYTES:
            with _LOCKS_GUARD:
                first = self._key not in _LARGE_SEEN
                _LARGE_SEEN.add(self._key)
            return first
        return False

    def _scrub(self, value: Any) -> Any:
        """Every string without control characters and secrets, at any depth."""
        if isinstance(value, str):
            return redact(strip_controls(value), self._secrets)
        if isinstance(value, dict):
            return {str(k): self._scrub(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._scrub(v) for v in value]
        return value

    # -- compaction ----------------------------------------------------------------------

    def compact(self, keep_settled: int = KEEP_SETTLED) -> tuple[int, int]:
        """Drop the records of settled requests beyond the newest ``keep_settled``; returns
        the file's size before and after.  Safe while other processes append."""
        with self._lock, FileLock(self.lock_path):
            return self._compact_locked(keep_settled)

    def _compact_locked(self, keep_settled: int) -> tuple[int, int]:
        raw = self._read_raw()
        kept = compacted(raw, keep_settled)
        if len(kept) == len(raw):
            return len(raw), len(raw)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = open_nofollow(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            try:
                write_all(fd, kept)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _sync_folder(self.path.parent)
        return len(raw), len(kept)

    # -- reading -------------------------------------------------------------------------

    def _read_raw(self) -> bytes:
        try:
            fd = open_nofollow(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return b""
        try:
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def events(self) -> Iterator[dict[str, Any]]:
        """Every well-formed record in file order; damaged lines are skipped.

        Raises NotARegularFile (an OSError) when the journal is a link or not a file."""
        for line in self._read_raw().splitlines():
            record = parse_record(line)
            if record is not None:
                yield record

    def entries(self) -> list[JournalEntry]:
        """One entry per request, oldest submit first."""
        try:
            info = os.lstat(self.path)
            key = (info.st_ino, info.st_size, info.st_mtime_ns)
        except FileNotFoundError:
            return []
        if self._parsed is not None and self._parsed[0] == key:
            return list(self._parsed[1])
        folded: dict[str, dict[str, Any]] = {}
        for n, record in enumerate(self.events()):
            rid = record[_ID]
            acc = folded.setdefault(rid, {})
            acc["order"] = n
            acc["updated_at"] = record.get(_TIME)
            version = record_version(record)
            if version is None:
                continue  # not a version at all: a damaged record
            if version > FORMAT_VERSION:
                acc["newer_version"] = max(version, acc.get("newer_version") or 0)
                continue
            if _STATE in record:
                acc["state"] = State.parse(record[_STATE])
                acc["completed"] = acc.get("completed", False) or acc["state"] in _FINISHED
            if record.get(_EVENT) == _SUBMITTED_EVENT:
                acc["submitted_at"] = record.get(_TIME)
                acc["handle"] = _handle(rid, record.get(_HANDLE))
                acc["recorded_purpose"] = record.get(_PURPOSE) or {}
                continue
            for key_name, kind in ((_RESULT_PATH, str), (_ERROR, str), (_OUTPUT, str)):
                value = record.get(key_name)
                if isinstance(value, kind):
                    acc[key_name] = value
            for key_name in (_CORRECTION, _GRAIN):
                note = record.get(key_name)
                if isinstance(note, dict):
                    acc[key_name] = note
        entries = [JournalEntry(rid, **acc) for rid, acc in folded.items()]
        self._parsed = (key, entries)
        return list(entries)

    def find(self, request_id: str) -> JournalEntry | None:
        for entry in self.entries():
            if entry.request_id == request_id:
                return entry
        return None


def _sync_folder(folder: Path) -> None:
    """Make a rename durable (POSIX; Windows has no directory handles to sync)."""
    if os.name == "nt":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def _handle(request_id: str, urls: object) -> RequestHandle | None:
    if not isinstance(urls, dict):
        return None
    status, response, cancel = (urls.get(k) for k in _HANDLE_KEYS)
    if not (
        isinstance(status, str)
        and isinstance(response, str)
        and isinstance(cancel, str)
        and status
        and response
        and cancel
    ):
        return None
    return RequestHandle(request_id, status, response, cancel)
