"""The per-user journal of submitted requests, and its result cache.

Every submit is billed, so every request id is written down — appended as one JSON line and
fsynced — before anything waits on it.  Later events (completed, downloaded, failed,
cancelled) are appended too; nothing is ever rewritten, so a crash can at worst cut the last
line short, and readers skip such a line.  Downloaded results are kept in ``results/`` beside
the journal, each written atomically (temporary file, fsync, rename).

The result cache is bounded: after each result is stored, the oldest results are deleted
until at most ``RESULT_CACHE_MAX_FILES`` remain and they take at most
``RESULT_CACHE_MAX_BYTES``; the result just stored is always kept.  A pruned result can
still be fetched from fal by its request id while fal keeps it.

Storage only: nothing here talks to the network (``pipeline.recover`` fetches a result
that is not cached).

The journal never holds the API key: it stores handles (URLs without credentials), the
caller's ``purpose`` and state notes; every string in a record is stripped of control
characters and redacted with the secrets the journal was given (``Journal(path, secrets)``
or ``with_secrets``: the pipeline hands it the client's), and the whole line is redacted
once more.

``ensure_writable`` proves, before anything is submitted, that the journal and the result
cache can be written and that the disk has room for the result: a paid request is never
sent while its id could not be written down.

Readers skip what they cannot trust: damaged lines, and records whose fields have the wrong
types (a ``"time": 5`` never reaches a caller that sorts by time).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import settings
from .errors import StorageError, redact, strip_controls
from .status import REQUEST_ID, RequestHandle

__all__ = [
    "JOURNAL_FILE_NAME",
    "RESULTS_DIR_NAME",
    "RESULT_CACHE_MAX_BYTES",
    "RESULT_CACHE_MAX_FILES",
    "Journal",
    "JournalEntry",
    "default_journal_path",
]

JOURNAL_FILE_NAME = "journal.jsonl"
RESULTS_DIR_NAME = "results"
_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg"}
# The newest results kept in the cache: at most this many, in at most this many bytes (a
# 4 MP result is 5-12 MB as PNG, so both limits allow about 50 recent results).
RESULT_CACHE_MAX_FILES = 50
RESULT_CACHE_MAX_BYTES = 500 * 1024 * 1024
_RESERVED = frozenset({"time", "event", "request_id", "state", "handle", "purpose"})

# Besides the result itself: the journal lines of a few requests and the file system's own
# bookkeeping.
ROOM_MARGIN_BYTES = 1024 * 1024
# Written and removed by ensure_writable: a real write, so a full disk shows up.
_PROBE_BYTES = 4096

# One lock per journal file, shared by every Journal object on it in this process.
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def default_journal_path(env: Mapping[str, str] | None = None) -> Path:
    """``$FLUX_OUTPAINT_DATA_DIR/journal.jsonl``, else the platform's per-user data folder."""
    return settings.data_dir(env) / JOURNAL_FILE_NAME


@dataclass(frozen=True)
class JournalEntry:
    """Everything the journal knows about one request, folded from its events in order."""

    request_id: str
    state: str  # the latest event: submitted | completed | downloaded | failed | cancelled | …
    submitted_at: str | None = None
    updated_at: str | None = None
    handle: RequestHandle | None = None
    purpose: Mapping[str, Any] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)  # extras of all events, merged

    @property
    def result_path(self) -> str | None:
        path = self.details.get("result_path")
        return path if isinstance(path, str) else None


class Journal:
    def __init__(self, path: str | os.PathLike[str], secrets: tuple[str, ...] = ()) -> None:
        self.path = Path(path)
        self.results_dir = self.path.parent / RESULTS_DIR_NAME
        self._secrets = tuple(secrets)
        key = os.path.abspath(self.path)
        with _LOCKS_GUARD:
            self._lock = _LOCKS.setdefault(key, threading.Lock())

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

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
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)
            os.close(os.open(self.path, flags, 0o600))
            probe = self.results_dir / f".probe.{os.getpid()}.{threading.get_ident()}.tmp"
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
            fd = os.open(probe, flags, 0o600)
            try:
                try:
                    _write_all(fd, bytes(_PROBE_BYTES))
                finally:
                    os.close(fd)
            finally:
                probe.unlink(missing_ok=True)
            free = shutil.disk_usage(self.results_dir).free
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise StorageError(f"Cannot write the journal in {where} ({reason})") from None
        need = room_bytes + ROOM_MARGIN_BYTES
        if free < need:
            raise StorageError(
                f"Not enough free space in {where} for the result ({_mb(free)} free, "
                f"{_mb(need)} needed)"
            )

    # -- writing -------------------------------------------------------------------------

    def record_submit(
        self,
        handle: RequestHandle,
        purpose: Mapping[str, Any] | None = None,
    ) -> None:
        """Write down a new request id durably; call before waiting on it."""
        self._append(
            {
                "event": "submitted",
                "request_id": handle.request_id,
                "state": "submitted",
                "handle": {
                    "status_url": handle.status_url,
                    "response_url": handle.response_url,
                    "cancel_url": handle.cancel_url,
                },
                "purpose": dict(purpose or {}),
            }
        )

    def mark(self, request_id: str, state: str, **extra: Any) -> None:
        """Append a state change (completed, downloaded, failed, cancelled, …)."""
        clash = _RESERVED.intersection(extra)
        if clash:
            raise ValueError(f"journal extras may not use the names {sorted(clash)}")
        self._append({"event": "state", "request_id": request_id, "state": state, **extra})

    def note(self, request_id: str, **extra: Any) -> None:
        """Append facts about a request without changing its state (e.g. how it was placed)."""
        clash = _RESERVED.intersection(extra)
        if clash:
            raise ValueError(f"journal extras may not use the names {sorted(clash)}")
        self._append({"event": "note", "request_id": request_id, **extra})

    def store_result(self, request_id: str, blob: bytes, content_type: str) -> Path:
        """Keep a downloaded result beside the journal (atomically); returns its path."""
        ext = _EXTENSIONS.get(content_type.split(";")[0].strip().lower())
        if ext is None:
            raise ValueError(f"not a result image type: {content_type!r}")
        self.results_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = self.results_dir / f"{_safe_id(request_id)}{ext}"
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600)
        try:
            try:
                _write_all(fd, blob)
            finally:
                os.close(fd)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self.prune_results(keep=target)
        return target

    def prune_results(
        self,
        max_files: int | None = None,
        max_bytes: int | None = None,
        keep: Path | None = None,
    ) -> list[Path]:
        """Delete the oldest cached results beyond the limits; returns what was deleted.

        The limits default to ``RESULT_CACHE_MAX_FILES`` and ``RESULT_CACHE_MAX_BYTES``.
        ``keep`` (the result just stored) is never deleted.  Files that vanish meanwhile (a
        second process pruning too) are skipped.
        """
        max_files = RESULT_CACHE_MAX_FILES if max_files is None else max_files
        max_bytes = RESULT_CACHE_MAX_BYTES if max_bytes is None else max_bytes
        found: list[tuple[float, str, Path, int]] = []
        try:
            names = list(self.results_dir.iterdir())
        except FileNotFoundError:
            return []
        for path in names:
            if path.suffix not in _EXTENSIONS.values() or path.name.startswith("."):
                continue
            try:
                info = path.stat()
            except FileNotFoundError:
                continue
            found.append((info.st_mtime, path.name, path, info.st_size))
        found.sort(reverse=True)  # newest first
        kept_files, kept_bytes, full, deleted = 0, 0, False, []
        for _, _, path, size in found:
            # Newest first: once one result does not fit, every older one goes too.
            full = full or kept_files >= max_files or kept_bytes + size > max_bytes
            if path == keep or not full:
                kept_files += 1
                kept_bytes += size
                continue
            path.unlink(missing_ok=True)
            deleted.append(path)
        return deleted

    def _append(self, record: dict[str, Any]) -> None:
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **self._scrub(record)}
        line = json.dumps(record, ensure_ascii=False, default=str)
        line = redact(line, self._secrets) + "\n"
        data = line.encode("utf-8")
        with self._lock:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)
            fd = os.open(self.path, flags, 0o600)
            try:
                # A crash may have cut the previous line short: start ours on a fresh line
                # so that only the broken line is lost, not ours as well.
                if os.fstat(fd).st_size > 0:
                    os.lseek(fd, -1, os.SEEK_END)
                    if os.read(fd, 1) != b"\n":
                        data = b"\n" + data
                _write_all(fd, data)
            finally:
                os.close(fd)

    def _scrub(self, value: Any) -> Any:
        """Every string without control characters and secrets, at any depth."""
        if isinstance(value, str):
            return redact(strip_controls(value), self._secrets)
        if isinstance(value, dict):
            return {str(k): self._scrub(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._scrub(v) for v in value]
        return value

    # -- reading -------------------------------------------------------------------------

    def events(self) -> Iterator[dict[str, Any]]:
        """Every well-formed record in file order; damaged lines are skipped."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        for line in raw.splitlines():
            try:
                record = json.loads(line)
            except (ValueError, UnicodeDecodeError, RecursionError):
                continue
            if _well_formed(record):
                yield record

    def entries(self) -> list[JournalEntry]:
        """One entry per request, oldest submit first."""
        folded: dict[str, dict[str, Any]] = {}
        for record in self.events():
            rid = record["request_id"]
            acc = folded.setdefault(
                rid,
                {
                    "state": "unknown",
                    "details": {},
                    "purpose": {},
                    "handle": None,
                    "submitted_at": None,
                },
            )
            acc["state"] = str(record.get("state", acc["state"]))
            acc["updated_at"] = record.get("time")
            if record.get("event") == "submitted":
                acc["submitted_at"] = record.get("time")
                acc["handle"] = _handle(rid, record.get("handle"))
                purpose = record.get("purpose")
                acc["purpose"] = purpose if isinstance(purpose, dict) else {}
            else:
                acc["details"].update({k: v for k, v in record.items() if k not in _RESERVED})
        return [JournalEntry(rid, **acc) for rid, acc in folded.items()]

    def find(self, request_id: str) -> JournalEntry | None:
        for entry in self.entries():
            if entry.request_id == request_id:
                return entry
        return None

    def latest(self, state: str | None = "completed") -> JournalEntry | None:
        """The most recently updated request whose current state is ``state`` (None: any)."""
        last: JournalEntry | None = None
        order = {rid: i for i, rid in enumerate(r["request_id"] for r in self.events())}
        for entry in self.entries():
            if state is not None and entry.state != state:
                continue
            if last is None or order[entry.request_id] >= order[last.request_id]:
                last = entry
        return last

    def cached_result(self, request_id: str) -> tuple[bytes, str] | None:
        """The stored result of a request, if one was downloaded."""
        for content_type, ext in _EXTENSIONS.items():
            path = self.results_dir / f"{_safe_id(request_id)}{ext}"
            try:
                return path.read_bytes(), content_type
            except FileNotFoundError:
                continue
        return None


# Fields every reader relies on, and the types they must have when present.
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "request_id": str,
    "time": str,
    "event": str,
    "state": str,
    "handle": dict,
    "purpose": dict,
}


def _well_formed(record: object) -> bool:
    if not isinstance(record, dict) or not isinstance(record.get("request_id"), str):
        return False
    if not REQUEST_ID.fullmatch(record["request_id"]):
        return False
    return all(
        isinstance(record[name], kind) for name, kind in _FIELD_TYPES.items() if name in record
    )


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def _safe_id(request_id: str) -> str:
    if not REQUEST_ID.fullmatch(request_id):
        raise ValueError(f"not a request id: {request_id[:40]!r}")
    return request_id


def _handle(request_id: str, urls: object) -> RequestHandle | None:
    if not isinstance(urls, dict):
        return None
    status, response, cancel = (urls.get(k) for k in ("status_url", "response_url", "cancel_url"))
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


def _write_all(fd: int, data: bytes) -> None:
    """os.write may write less than asked; loop, then make it durable before returning."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)
