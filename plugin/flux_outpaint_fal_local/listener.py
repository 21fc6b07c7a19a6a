"""The local fal server's listening socket and the state its connections share.

``routes.Handler`` answers each connection and reaches this state through ``self.server``;
``server`` builds the listener around a ``Backend`` and runs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Iterable
from http.server import ThreadingHTTPServer
from socketserver import BaseRequestHandler
from typing import IO, Any

from .backend import Backend

Address = tuple[str, int]


class Listener(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        addr: Address,
        handler: Callable[[Any, Any, Listener], BaseRequestHandler],
        backend: Backend,
        ssl_ctx: ssl.SSLContext | None,
        *,
        keys: Iterable[str] | None,
        bandwidth_mbit: float | None,
        latency_ms: float | None,
        log_path: str | os.PathLike[str] | None,
        keepalive: float,
    ) -> None:
        super().__init__(addr, handler)
        self.backend, self.ssl_ctx = backend, ssl_ctx
        self.keys = None if keys is None else frozenset(keys)
        self.rate = bandwidth_mbit * 1e6 / 8 if bandwidth_mbit else None  # bytes per second
        self.latency, self.keepalive = (latency_ms or 0) / 1000.0, keepalive
        self.scheme, port = "https" if ssl_ctx else "http", self.server_address[1]
        host = addr[0] if addr[0] not in ("", "0.0.0.0") else "127.0.0.1"
        self.netloc = f"{host}:{port}"
        self.lock = threading.Lock()  # guards everything below
        self.uploads: dict[str, tuple[str, str]] = {}  # upload token → (file key, content type)
        self.tokens: set[str] = set()  # CDN bearer tokens handed out
        self.events: list[dict[str, Any]] = []
        self.log_file: IO[str] | None = (
            open(log_path, "a", encoding="utf-8") if log_path else None  # noqa: SIM115
        )
        self._conns: set[socket.socket] = set()

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        # Headers and body go out in separate writes: without NODELAY, Nagle holds the body
        # until the client's delayed ACK (40 ms), which real CDNs don't add.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_ctx:
            sock = self.ssl_ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def record(self, event: dict[str, Any], *, request: bool = True) -> None:
        """Log one exchange (``request``) or one job event (log file only)."""
        with self.lock:
            if request:
                self.events.append(event)
            if self.log_file:
                self.log_file.write(json.dumps(event) + "\n")
                self.log_file.flush()

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self.lock:
            (self._conns.add if alive else self._conns.discard)(conn)

    def close_connections(self) -> None:
        with self.lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # failed handshakes, resets: expected
            super().handle_error(request, client_address)
