"""The result cache: downloaded results kept beside the journal, one file per request.

Each result is written atomically (temporary file, fsync, rename) as ``<request id>.png`` or
``.jpg``.  At most ``RESULT_CACHE_MAX_FILES`` files in ``RESULT_CACHE_MAX_BYTES`` are kept
(the oldest go first; the one just stored always stays); a pruned result can still be
fetched from fal by its id while fal keeps it.  A cached file is read without following
links, only when it is a regular file, and only up to the size a download may have
(``download.MAX_RESULT_BYTES``): anything else is as good as absent.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from .download import MAX_RESULT_BYTES
from .journal_files import open_nofollow, read_capped, write_all
from .status import REQUEST_ID

__all__ = ["RESULT_CACHE_MAX_BYTES", "RESULT_CACHE_MAX_FILES", "ResultCache"]

_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg"}
# The newest results kept in the cache: at most this many, in at most this many bytes (a
# 4 MP result is 5-12 MB as PNG, so both limits allow about 50 recent results).
RESULT_CACHE_MAX_FILES = 50
RESULT_CACHE_MAX_BYTES = 500 * 1024 * 1024


class ResultCache:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def store(self, request_id: str, blob: bytes, content_type: str) -> Path:
        """Keep a downloaded result beside the journal (atomically); returns its path."""
        ext = _EXTENSIONS.get(content_type.split(";")[0].strip().lower())
        if ext is None:
            raise ValueError(f"not a result image type: {content_type!r}")
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = self.folder / f"{_safe_id(request_id)}{ext}"
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = open_nofollow(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_EXCL)
        try:
            try:
                write_all(fd, blob)
            finally:
                os.close(fd)
            os.replace(tmp, target)  # a link at ``target`` is replaced, never followed
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self.prune(keep=target)
        return target

    def prune(
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
            names = list(self.folder.iterdir())
        except FileNotFoundError:
            return []
        for path in names:
            if path.suffix not in _EXTENSIONS.values() or path.name.startswith("."):
                continue
            try:
                info = path.lstat()
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

    def get(self, request_id: str) -> tuple[bytes, str] | None:
        """The stored result of a request, if one was downloaded (a link, a non-file or a
        file larger than any download is not read: None)."""
        for content_type, ext in _EXTENSIONS.items():
            path = self.folder / f"{_safe_id(request_id)}{ext}"
            try:
                data = read_capped(path, MAX_RESULT_BYTES)
            except OSError:  # absent, a link, a FIFO, unreadable: as good as absent
                continue
            if data is not None:
                return data, content_type
        return None


def _safe_id(request_id: str) -> str:
    if not REQUEST_ID.fullmatch(request_id):
        raise ValueError(f"not a request id: {request_id[:40]!r}")
    return request_id
