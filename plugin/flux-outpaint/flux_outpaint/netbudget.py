"""Deadlines and cancels that reach into a blocked socket: a total-time budget per call.

httpx's timeouts are per operation: a read timeout starts again with every byte that
arrives, so a server that trickles one byte a second keeps a call alive for ever, and a
cancel flag is only looked at between calls.  This module wraps the network backend of
httpx's transport (httpcore's, the layer that owns the sockets).  While
``limit(end, cancelled)`` is active in the calling thread, every connect, TLS handshake,
write and read of that thread is cut to what is left until ``end`` (a ``time.monotonic()``
value), and a read that waits wakes every ``SLICE_S`` to ask ``cancelled()``:

* past ``end``: ``Expired``, naming how far the request got (connect, write, read);
* ``cancelled()`` true: ``Interrupted``.

Neither is an httpx error: both pass through httpx unchanged, and the caller (the queue
client) decides what they mean; httpcore closes the connection they interrupt.  Writes go
out in ``WRITE_CHUNK`` pieces with the same checks between them.  A TLS handshake, many
reads inside the ssl module, is bounded as a whole by a watchdog thread that shuts the
socket down when its time is up or the flag is set.  Outside a ``limit`` block
the streams behave exactly like the ones they wrap.

``install(client)`` puts the wrapper under an httpx client's connection pools (the default
transport and any proxy mounts).  httpx offers no public hook for a network backend, so this
replaces the pools' ``_network_backend`` before their first connection; the pinned versions
are checked by tests/test_netbudget.py, and where the attribute is missing ``install``
returns False and httpx's per-read timeouts still apply.  The wrappers are duck-typed (no
import of httpcore: httpx stays the core's one third-party import).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

__all__ = ["SLICE_S", "WRITE_CHUNK", "Expired", "Interrupted", "install", "limit"]

# How long a waiting read may go without looking at the cancel flag.
SLICE_S = 0.25
WRITE_CHUNK = 64 * 1024


class Interrupted(Exception):
    """The caller's cancel flag was set while its call was in flight."""


class Expired(Exception):
    """The call's time budget ran out; ``phase`` says how far the request had got."""

    def __init__(self, phase: str) -> None:
        super().__init__(f"the call's time budget ran out while waiting to {phase}")
        self.phase = phase  # "connect" | "write" | "read"


class _Budget:
    def __init__(self, end: float | None, cancelled: Callable[[], bool] | None) -> None:
        self.end = end
        self.cancelled = cancelled

    def cut(self, timeout: float | None, phase: str) -> float | None:
        """``timeout`` shortened to the time left; raises when nothing is left."""
        if self.cancelled is not None and self.cancelled():
            raise Interrupted("cancelled")
        if self.end is None:
            return timeout
        left = self.end - time.monotonic()
        if left <= 0:
            raise Expired(phase)
        return left if timeout is None else min(timeout, left)


_state = threading.local()


@contextlib.contextmanager
def limit(end: float | None, cancelled: Callable[[], bool] | None = None) -> Iterator[None]:
    """Bound every socket operation of this thread, inside the block, by ``end``/``cancelled``."""
    previous = getattr(_state, "budget", None)
    _state.budget = _Budget(end, cancelled)
    try:
        yield
    finally:
        _state.budget = previous


def _current() -> _Budget | None:
    budget = getattr(_state, "budget", None)
    return budget if isinstance(budget, _Budget) else None


def _timed_out(exc: BaseException) -> bool:
    """httpcore raises its timeouts ``from`` the socket's TimeoutError."""
    return isinstance(exc.__cause__, TimeoutError) or isinstance(exc, TimeoutError)


class _Stream:
    """A network stream whose operations obey the calling thread's budget."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        budget = _current()
        if budget is None:
            data: bytes = self._inner.read(max_bytes, timeout)
            return data
        until = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if until is None else until - time.monotonic()
            if left is not None and left <= 0:
                raise Expired("read")  # the read's own timeout, met slice by slice
            step = budget.cut(left, "read")
            if budget.cancelled is None or (step is not None and step <= SLICE_S):
                data = self._inner.read(max_bytes, step)
                return data
            try:
                data = self._inner.read(max_bytes, SLICE_S)
                return data
            except Exception as exc:  # only a slice that timed out is read again
                if not _timed_out(exc):
                    raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        budget = _current()
        if budget is None or len(buffer) == 0:
            self._inner.write(buffer, timeout)
            return
        view = memoryview(buffer)
        for start in range(0, len(view), WRITE_CHUNK):
            step = budget.cut(timeout, "write")
            self._inner.write(bytes(view[start : start + WRITE_CHUNK]), step)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> _Stream:
        budget = _current()
        if budget is None:
            return _Stream(self._inner.start_tls(ssl_context, server_hostname, timeout))
        timeout = budget.cut(timeout, "connect")
        # A handshake waits inside the ssl module, where no flag is looked at: a watchdog
        # shuts the socket down when the handshake's time is up or the cancel flag is set,
        # and the handshake then fails at once.
        watch = _Watchdog(self._inner.get_extra_info("socket"), timeout, budget.cancelled)
        try:
            return _Stream(self._inner.start_tls(ssl_context, server_hostname, timeout))
        except Exception:
            if watch.fired == "cancelled":
                raise Interrupted("cancelled") from None
            if watch.fired == "expired":
                raise Expired("connect") from None
            raise
        finally:
            watch.stop()

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Watchdog:
    """Shuts the socket down after ``timeout`` seconds or once ``cancelled()``, unless
    stopped first; ``fired`` says which ("expired" | "cancelled" | "")."""

    def __init__(
        self, sock: Any, timeout: float | None, cancelled: Callable[[], bool] | None
    ) -> None:
        self.fired = ""
        self._cancelled = cancelled
        self._end = None if timeout is None else time.monotonic() + timeout
        self._done = threading.Event()
        # By number, and a number of our own: the ssl module detaches the socket object it
        # wraps, and the caller may close its descriptor before stop() (a failed handshake),
        # after which the same number can name someone else's socket.  A duplicate stays
        # ours until _run closes it, and shutting it down shuts the one socket behind both.
        self._fd = os.dup(sock.fileno()) if isinstance(sock, socket.socket) else -1
        if self._fd >= 0:
            threading.Thread(target=self._run, name="tls-watchdog", daemon=True).start()

    def _run(self) -> None:
        try:
            while not self._done.wait(SLICE_S):
                if self._cancelled is not None and self._cancelled():
                    self.fired = "cancelled"
                elif self._end is not None and time.monotonic() >= self._end:
                    self.fired = "expired"
                else:
                    continue
                with contextlib.suppress(OSError):  # already closed: nothing left to wake
                    view = socket.socket(fileno=self._fd)
                    try:
                        view.shutdown(socket.SHUT_RDWR)  # wakes the handshake
                    finally:
                        view.detach()
                return
        finally:
            os.close(self._fd)

    def stop(self) -> None:
        self._done.set()


class _Backend:
    """A network backend whose streams obey the calling thread's budget."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> _Stream:
        budget = _current()
        if budget is not None:
            timeout = budget.cut(timeout, "connect")
        return _Stream(self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> _Stream:
        budget = _current()
        if budget is not None:
            timeout = budget.cut(timeout, "connect")
        return _Stream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def install(client: httpx.Client) -> bool:
    """Put the budget under every connection pool of ``client``; False where it could not.

    A transport without an httpcore pool (e.g. ``httpx.MockTransport`` in tests) has no
    sockets to bound and is left alone.
    """
    mounts: dict[Any, Any] = getattr(client, "_mounts", {}) or {}
    transports = [getattr(client, "_transport", None), *mounts.values()]
    done = True
    for transport in transports:
        if not isinstance(transport, httpx.HTTPTransport):
            continue
        pool: Any = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is None or not callable(getattr(backend, "connect_tcp", None)):
            done = False
            continue
        if not isinstance(backend, _Backend):
            pool._network_backend = _Backend(backend)
    return done
