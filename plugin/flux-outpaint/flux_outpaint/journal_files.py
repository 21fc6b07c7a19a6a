"""Files in the data folder, opened safely, and the lock that several processes share.

``open_nofollow`` never follows a symbolic link and opens only regular files: the journal
and cached results live in a folder another program could plant a link or a FIFO in.  Where
the platform has ``O_NOFOLLOW`` (Linux, macOS, BSD) the kernel refuses the link; where it
has not (Windows), the path is ``lstat``-ed before the open and the opened file must be the
one that was seen (same device and inode), so a link swapped in between is caught too.

``FileLock`` is a lock file made with ``O_CREAT | O_EXCL`` — atomic on every platform GIMP
runs on, no ``fcntl`` needed.  It holds its owner's pid, host and a random token.  A lock
left by a process that died while holding it (GIMP's status-bar Cancel SIGKILLs the
plug-in) is broken: at once when its owner is known dead on this host (POSIX), else once it
is older than ``STALE_S`` — far longer than any holder keeps it (an append takes
milliseconds, a compaction well under a second).  A process in another pid namespace
(a Flatpak GIMP) looks dead to the host, so a lock is only judged by its pid once it is
``DEAD_GRACE_S`` old.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import socket
import stat
import time
from types import TracebackType

__all__ = ["FileLock", "LockTimeout", "NotARegularFile", "open_nofollow", "read_capped"]

STALE_S = 10.0  # no holder keeps the lock this long: its owner is gone
DEAD_GRACE_S = 2.0  # a lock whose owner looks dead is broken once it is this old
WAIT_S = 15.0  # how long an append waits for the lock before it reports a failure
_POLL_S = 0.002
_POLL_MAX_S = 0.05
_BINARY = getattr(os, "O_BINARY", 0)


class NotARegularFile(OSError):
    """A symbolic link, FIFO, device or folder where a data file should be."""


class LockTimeout(OSError):
    """The journal's lock stayed taken for ``WAIT_S`` seconds."""


def _nofollow_flag() -> int | None:
    # Looked up at each call, so tests can take it away (as on Windows).
    flag = getattr(os, "O_NOFOLLOW", None)
    return flag if isinstance(flag, int) and flag else None


def open_nofollow(path: str | os.PathLike[str], flags: int, mode: int = 0o600) -> int:
    """``os.open`` that refuses symbolic links and anything but a regular file.

    Raises NotARegularFile (an OSError) for those, other OSErrors as ``os.open`` does.  A
    read-only open never blocks on a FIFO (``O_NONBLOCK`` where it exists).
    """
    flags |= _BINARY
    nonblock = getattr(os, "O_NONBLOCK", 0)
    if flags & (os.O_WRONLY | os.O_RDWR) == 0:
        flags |= nonblock
    nofollow = _nofollow_flag()
    before: os.stat_result | None = None
    if nofollow is not None:
        try:
            fd = os.open(path, flags | nofollow, mode)
        except OSError as exc:
            if exc.errno == errno.ELOOP or (exc.errno == errno.EMLINK and _is_link(path)):
                raise NotARegularFile(errno.ELOOP, "a symbolic link", str(path)) from None
            raise
    else:
        try:
            before = os.lstat(path)
        except FileNotFoundError:
            before = None
        if before is not None and not stat.S_ISREG(before.st_mode):
            raise NotARegularFile(errno.ELOOP, "not a regular file", str(path))
        fd = os.open(path, flags, mode)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotARegularFile(errno.EINVAL, "not a regular file", str(path))
        if nofollow is None:
            # Without O_NOFOLLOW: the file opened must be the one lstat saw (or, when the
            # open created it, the one there now), not a link swapped in meanwhile.
            seen = before if before is not None else os.lstat(path)
            if not stat.S_ISREG(seen.st_mode) or (seen.st_dev, seen.st_ino) != (
                info.st_dev,
                info.st_ino,
            ):
                raise NotARegularFile(errno.ELOOP, "replaced while opening", str(path))
    except BaseException:
        os.close(fd)
        raise
    if flags & nonblock:
        _set_blocking(fd)
    return fd


def _set_blocking(fd: int) -> None:
    set_blocking = getattr(os, "set_blocking", None)
    if set_blocking is not None:
        set_blocking(fd, True)


def _is_link(path: str | os.PathLike[str]) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return False


def read_capped(path: str | os.PathLike[str], max_bytes: int) -> bytes | None:
    """A regular file's bytes, not following links; None when it is larger than
    ``max_bytes`` (checked from its size first, then while reading: it may grow)."""
    fd = open_nofollow(path, os.O_RDONLY)
    try:
        if os.fstat(fd).st_size > max_bytes:
            return None
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                return None
        return b"".join(chunks)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """os.write may write less than asked; loop, then make it durable before returning."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


class FileLock:
    """``with FileLock(path):`` — one holder at a time across processes (see the module)."""

    def __init__(self, path: str | os.PathLike[str], wait_s: float = WAIT_S) -> None:
        self.path = os.fspath(path)
        self.wait_s = wait_s
        self._token: bytes | None = None

    def acquire(self) -> None:
        token = f"{os.getpid()} {socket.gethostname()} {secrets.token_hex(8)}".encode()
        end = time.monotonic() + self.wait_s
        pause = _POLL_S
        while True:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY, 0o600)
            except FileExistsError:
                self._break_if_stale()
            except PermissionError:
                # Windows answers a file being deleted by another process this way.
                if os.name != "nt":
                    raise
            else:
                try:
                    write_all(fd, token)
                finally:
                    os.close(fd)
                self._token = token
                return
            if time.monotonic() > end:
                raise LockTimeout(errno.EAGAIN, "the journal is locked by another program")
            time.sleep(pause)
            pause = min(pause * 2, _POLL_MAX_S)

    def release(self) -> None:
        token, self._token = self._token, None
        if token is None:
            return
        # Only our own lock: had we been judged stale, the file may be someone else's now.
        try:
            if _read_small(self.path) == token:
                os.unlink(self.path)
        except OSError:
            pass

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def _break_if_stale(self) -> None:
        try:
            info = os.stat(self.path)
            held = _read_small(self.path)
        except OSError:
            return  # released meanwhile
        age = time.time() - info.st_mtime
        if age < DEAD_GRACE_S or (age < STALE_S and not _owner_dead(held)):
            return
        # Move it aside under a unique name (atomic: one breaker wins), then drop it.
        aside = f"{self.path}.stale.{os.getpid()}.{secrets.token_hex(4)}"
        try:
            os.replace(self.path, aside)
        except OSError:
            return
        with contextlib.suppress(OSError):
            os.unlink(aside)


def _read_small(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | _BINARY)
    try:
        return os.read(fd, 256)
    finally:
        os.close(fd)


def _owner_dead(held: bytes) -> bool:
    """True only when the lock's owner is surely gone: same host, POSIX, no such process."""
    if os.name == "nt":
        return False  # os.kill would terminate it there; the age decides instead
    parts = held.decode("ascii", "replace").split()
    if len(parts) != 3 or not parts[0].isdigit() or parts[1] != socket.gethostname():
        return False
    try:
        os.kill(int(parts[0]), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False
