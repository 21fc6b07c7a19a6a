"""Hostile HTTP servers in a few lines: each answers on 127.0.0.1 with whatever its script
does (trickle, stall, lie), for tests of what the client does about it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Script = Callable[[BaseHTTPRequestHandler, threading.Event], None]


class Hostile:
    """``base_url``, ``requests`` (method, path) seen so far, and ``stopping`` for scripts."""

    def __init__(self, script: Script) -> None:
        self.requests: list[tuple[str, str]] = []
        self.stopping = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                outer.requests.append((self.command, self.path))
                length = int(self.headers.get("Content-Length") or 0)
                self.body = self.rfile.read(length) if length else b""
                try:
                    script(self, outer.stopping)
                except OSError:  # the client gave up: that is what these tests are about
                    self.close_connection = True

            do_POST = do_PUT = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def count(self, method: str, suffix: str = "") -> int:
        return sum(1 for m, p in self.requests if m == method and p.split("?")[0].endswith(suffix))

    def __enter__(self) -> Hostile:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()


@contextlib.contextmanager
def serve(script: Script) -> Iterator[Hostile]:
    with Hostile(script) as server:
        yield server


def trickle(
    handler: BaseHTTPRequestHandler,
    stopping: threading.Event,
    body: bytes,
    *,
    status: int = 200,
    ctype: str = "application/json",
    every_s: float = 0.2,
) -> None:
    """Honest headers, then the body one byte at a time."""
    handler.send_response(status)
    handler.send_header("Content-Type", ctype)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    for byte in body:
        if stopping.wait(every_s):
            return
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()


def stall(handler: BaseHTTPRequestHandler, stopping: threading.Event, limit_s: float = 60) -> None:
    """Accept the request, then say nothing at all."""
    stopping.wait(limit_s)


def trickle_headers(handler: BaseHTTPRequestHandler, stopping: threading.Event) -> None:
    """A status line and headers that never end, one byte at a time."""
    text = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 100_000
    for byte in text:
        if stopping.wait(0.1):
            return
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()


def answer(handler: BaseHTTPRequestHandler, body: bytes, status: int = 200, **headers) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", headers.pop("ctype", "application/json"))
    handler.send_header("Content-Length", str(len(body)))
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(body)


def after(seconds: float, fn: Callable[[], None]) -> threading.Timer:
    timer = threading.Timer(seconds, fn)
    timer.daemon = True
    timer.start()
    return timer


def monotonic() -> float:
    return time.monotonic()


class TrickleProxy:
    """A TCP proxy on 127.0.0.1 that forwards what the client sends at once and what the
    server answers one byte at a time (a TLS handshake included)."""

    def __init__(self, upstream_port: int, every_s: float = 0.1) -> None:
        import socket

        self._upstream, self._every = upstream_port, every_s
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket

        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self._upstream))
            threading.Thread(target=self._pipe, args=(client, server, 0.0), daemon=True).start()
            threading.Thread(
                target=self._pipe, args=(server, client, self._every), daemon=True
            ).start()

    def _pipe(self, src, dst, every_s: float) -> None:
        with contextlib.suppress(OSError):
            while not self._stop.is_set():
                data = src.recv(1 if every_s else 65536)
                if not data:
                    break
                dst.sendall(data)
                if every_s and self._stop.wait(every_s):
                    break
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.close()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()


def gzip_zeros(n: int) -> bytes:
    """A gzip member of ``n`` zero bytes, built from one compressed megabyte used again and
    again (a full flush makes each block stand alone): a bomb in milliseconds."""
    import struct
    import zlib

    block = 1 << 20
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = deflate.compress(bytes(block)) + deflate.flush(zlib.Z_FULL_FLUSH)
    full, rest = divmod(n, block)
    crc, zeros = 0, bytes(block)
    for _ in range(full):
        crc = zlib.crc32(zeros, crc)
    crc = zlib.crc32(bytes(rest), crc)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff", segment * full]
    parts.append(tail.compress(bytes(rest)) + tail.flush(zlib.Z_FINISH))
    parts.append(struct.pack("<II", crc & 0xFFFFFFFF, n & 0xFFFFFFFF))
    return b"".join(parts)


def gzip(data: bytes) -> bytes:
    import gzip as _gzip

    return _gzip.compress(data, 6)
