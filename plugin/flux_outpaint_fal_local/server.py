"""A local server that speaks fal's queue protocol for `fal-ai/flux-2-pro/outpaint`.

    python3 scripts/fal_local.py [--host H] [--port N] [--tls-cert F --tls-key F]
        [--queue-seconds S] [--run-seconds S] [--scenario NAME,…] [--bandwidth MBIT]
        [--latency MS] [--log FILE] [--keys K1,K2]

prints ``READY <base_url>`` once listening and serves until SIGINT/SIGTERM; in process:
``with start_server(...) as srv: srv.base_url``. It follows fal-protocol.md §8: queue routes
(trailing slash or not, ``/outpaint`` segment or not), Key auth, 202/200 status with logs, SSE
status stream, result and cancel outcomes, storage (fal's REST host and CDN, on this origin).
Job lifecycle and fault scenarios: ``scenarios``; the "model": ``fill``. Choices where
fal is undocumented (§9): unknown input fields are ignored and types are strict; all-zero
expansion, canvas > 4,194,304 px or a side < 64 px → 422 at result time (never at submit); a
result fetched early → 400 "Request is still in progress"; a cancelled request ends COMPLETED
with error, result 499; unknown id → 404; results expire 1 h after completion (6 min if ≥ 10
KB); bodies > 64 MiB → 413 (no multipart upload); webhooks are accepted but never called.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import socket
import ssl
import sys
import threading
import time
import traceback
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from . import hostile
from . import scenarios as sc

APP_PATH = "outpaint"
SSE_KEEPALIVE_S = 15.0  # §2.4
MAX_BODY_BYTES = 64 * 1024 * 1024
DRAIN_MAX_BYTES = 4 * MAX_BODY_BYTES  # refused bodies up to this size are read before replying
MIN_REQUEST_TIMEOUT_S = 0.1  # X-Fal-Request-Timeout must exceed this (docs: "min > 0.1")
CONNECTION_IDLE_S = 60.0
PACE_CHUNK = 16 * 1024
NO_USER = {"detail": "No user found for Key ID and Secret"}
QUEUE_OPS = {"": "GET", "status": "GET", "status/stream": "GET", "cancel": "PUT"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every reply but SSE carries Content-Length
    server_version = "fal-local"
    timeout = CONNECTION_IDLE_S

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):  # handshake here, not in the accept loop
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()
        self.server.track(self.request, True)

    def finish(self) -> None:
        self.server.track(self.request, False)
        super().finish()

    def log_message(self, format, *args) -> None:  # events go to _Server.record
        pass

    def do_GET(self) -> None:
        self._handle(self.command)

    do_POST = do_PUT = do_GET

    def _handle(self, method: str) -> None:
        srv: _Server = self.server
        self.backend: sc.Backend = srv.backend
        self._t0, self._parts = time.monotonic(), urlsplit(self.path)
        self._status = self._rid = None
        self._bytes_in = self._bytes_out = 0
        self._recorded = False
        self._query = parse_qs(self._parts.query)
        try:
            body = self._read_body()
            if body is not None:
                if srv.latency:
                    time.sleep(srv.latency)
                self._route(method, [s for s in self._parts.path.split("/") if s], body)
        except OSError:  # includes ssl errors and client disconnects
            self.close_connection = True
        except Exception:  # noqa: BLE001 - a bug here must not pass for a protocol answer
            traceback.print_exc()
            self._json(500, {"detail": "local server error"})
        finally:
            self._record()

    def _record(self) -> None:
        """Log the exchange once, before its last byte goes out (so clients find it logged)."""
        if self._recorded:
            return
        self._recorded = True
        headers = {
            k.lower(): v
            for k, v in self.headers.items()
            if k.lower() not in ("authorization", "cookie")
        }
        self.server.record(
            {
                "time": sc.now_iso(),
                "method": self.command,
                "path": self._parts.path,
                "query": self._parts.query,
                "status": self._status,
                "request_id": self._rid,
                "ms": round((time.monotonic() - self._t0) * 1000, 1),
                "headers": headers,
                "bytes_in": self._bytes_in,
                "bytes_out": self._bytes_out,
            }
        )

    def _route(self, method: str, segs: list[str], body: bytes) -> None:
        if segs == ["files", "upload"] and method == "POST":
            return self._cdn_upload(body)
        if segs[:1] == ["files"] and len(segs) > 1 and method == "GET":
            entry = self.backend.file("/".join(segs[1:]))
            if entry is None:
                return self._json(404, {"detail": "File not found"})
            faults = self.backend.faults
            if faults.active("redirect-result") and "moved" not in self._query:
                return hostile.redirect(self, f"{self._base()}{self._parts.path}?moved=1")
            if faults.active("trickle-image"):
                return hostile.trickle(self, 200, entry[0], entry[1], self.backend.stopping)
            return self._send(200, entry[0], entry[1])
        if segs == ["storage", "upload", "initiate"] and method == "POST":
            return self._initiate(body)
        if segs[:2] == ["storage", "upload"] and len(segs) == 3 and method == "PUT":
            return self._put_upload(segs[2], body)
        if segs == ["storage", "auth", "token"] and method == "POST":
            return self._cdn_token()
        if "requests" in segs[2:]:  # /{owner}/{alias}[/{path…}]/requests/{id}[/op]
            i = segs.index("requests", 2)
            op = "/".join(segs[i + 2 :])
            if len(segs) > i + 1 and op in QUEUE_OPS:
                self._rid = segs[i + 1]
                if method != QUEUE_OPS[op]:
                    return self._json(405, {"detail": "Method Not Allowed"})
                return self._request_op(op, tuple(segs[:2]), segs[i + 1])
        if segs == [*sc.APP, APP_PATH] and method == "POST":
            return self._submit(body)
        return self._json(404, {"detail": "Not Found"})

    # ---- queue ----
    def _submit(self, body: bytes) -> None:
        faults = self.backend.faults
        if not self._authorized() or self._locked():
            return
        if faults.once("429-once"):
            return self._json(429, sc.RATE_LIMITED, {"Retry-After": "1"})
        timeout_s = None
        if (raw := self.headers.get("X-Fal-Request-Timeout")) is not None:
            try:
                timeout_s = float(raw)
            except ValueError:
                timeout_s = -1.0
            if not timeout_s > MIN_REQUEST_TIMEOUT_S:
                return self._json(
                    400,
                    {
                        "detail": "X-Fal-Request-Timeout must be a number above "
                        f"{MIN_REQUEST_TIMEOUT_S}",
                        "error_type": "bad_request",
                    },
                )
        try:
            payload = json.loads(body)
        except ValueError:  # fal checks the input when the job runs, not here
            payload = body.decode("utf-8", "replace")
        key = (self.headers.get("Authorization") or "").partition(" ")[2].strip()
        job = self.backend.submit(payload, timeout_s, key)
        if faults.once("proxy-504"):  # accepted (and billed); the answer is lost on the way
            return self._send(504, b"Gateway Timeout", "text/plain", rid=False)
        self._rid = job.id
        status = self.backend.status_body(job, self._base(), False)[1]
        urls = {k: status[k] for k in ("response_url", "status_url", "cancel_url")}
        if faults.active("key-in-url"):
            urls = {k: f"{v}?key={key}" for k, v in urls.items()}
        reply = {"request_id": job.id, "status": "IN_QUEUE", "queue_position": job.position}
        reply.update(urls)
        if "fal_webhook" in self._query:
            reply["gateway_request_id"] = job.id
        self._json(200, reply)

    def _request_op(self, op: str, app: tuple, rid: str) -> None:
        backend, faults = self.backend, self.backend.faults
        if not self._authorized():
            return
        with backend.cond:
            job = backend.jobs.get(rid)
        if job is None or job.app != app:
            return self._json(
                404, {"status": "NOT_FOUND"} if op == "cancel" else {"detail": "Request not found"}
            )
        if op in ("status", "status/stream"):  # a poll or a stream: whichever comes first
            if faults.once("ingress-503"):
                return self._send(503, sc.INGRESS_503_HTML.encode(), "text/html", rid=False)
            if faults.once("500-once"):
                return self._json(500, sc.INTERNAL_ERROR)
            polled_only = faults.active("trickle-status") or faults.active("huge-status")
            if op == "status/stream" and polled_only:
                return self._json(404, {"detail": "Not Found"})
            if op == "status/stream":
                if faults.active("endless-sse-line"):
                    return hostile.endless_sse_line(self, backend.stopping)
                return self._stream(job)
            code, body = backend.status_body(job, self._base(), self._logs_wanted())
            if faults.active("trickle-status"):
                data = json.dumps(body).encode()
                return hostile.trickle(self, code, data, "application/json", backend.stopping)
            if faults.active("huge-status"):
                size = hostile.HUGE_STATUS_BYTES
                return hostile.huge_json(self, code, size, backend.stopping, status=body["status"])
            return self._json(code, body)
        if op == "cancel":
            return self._json(*backend.cancel(job))
        result = backend.result(job)
        if result is None:
            return self._json(400, {"detail": "Request is still in progress"})
        if faults.once("drop-result"):
            self.close_connection = True  # no reply at all: the client sees a disconnect
            return
        code, body, headers = result
        if code == 200:  # stored file URLs are relative: use the origin this client called
            base = self._base()
            body = {
                **body,
                "images": [
                    {**im, "url": base + im["url"]} if im["url"].startswith("/") else im
                    for im in body["images"]
                ],
            }
            if faults.active("huge-result"):
                size = hostile.HUGE_RESULT_BYTES
                return hostile.huge_json(self, 200, size, backend.stopping)
            if faults.active("trickle-result"):
                data = json.dumps(body).encode()
                return hostile.trickle(self, 200, data, "application/json", backend.stopping)
        self._json(code, body, headers)

    def _logs_wanted(self) -> bool:
        return self._query.get("logs", ["0"])[-1] in ("1", "true", "True")

    def _stream(self, job: sc.Job) -> None:
        backend, keepalive = self.backend, self.server.keepalive
        self.close_connection = True  # the stream ends when the connection does
        self.send_response(200)
        for name, value in (
            ("Content-Type", "text/event-stream"),
            ("Cache-Control", "no-cache"),
            ("Connection", "close"),
            ("x-fal-request-id", self._rid),
        ):
            self.send_header(name, value)
        self.end_headers()
        self._status = 200
        if backend.faults.active("stall-status"):
            backend.stopping.wait()
            return
        last, next_keepalive, with_logs = None, time.monotonic() + keepalive, self._logs_wanted()
        while not backend.stopping.is_set():
            with backend.cond:
                snap = (job.state, job.position, len(job.logs))
                if snap == last:
                    wait = next_keepalive - time.monotonic()
                    if wait > 0:
                        backend.cond.wait(wait)
                        continue
                    event = None
                else:
                    last, event = snap, backend.status_body(job, self._base(), with_logs)[1]
            if event is None:
                chunk, next_keepalive = b": keepalive\n\n", time.monotonic() + keepalive
            else:
                chunk = f"data: {json.dumps(event)}\n\n".encode()
            self.wfile.write(chunk)
            self.wfile.flush()
            self._bytes_out += len(chunk)
            if event is not None and event["status"] == "COMPLETED":
                return

    # ---- storage: fal's REST host and CDN, on this origin ----
    def _initiate(self, body: bytes) -> None:
        if not self._authorized() or self._locked():
            return
        try:
            meta = json.loads(body or b"{}")
        except ValueError:
            meta = None
        meta = meta if isinstance(meta, dict) else {}
        key = f"{uuid.uuid4().hex}/{sc.safe_name(meta.get('file_name'))}"
        token = uuid.uuid4().hex
        with self.server.lock:
            self.server.uploads[token] = (
                key,
                str(meta.get("content_type") or "application/octet-stream"),
            )
        base = self._base()
        self._json(
            200, {"upload_url": f"{base}/storage/upload/{token}", "file_url": f"{base}/files/{key}"}
        )

    def _put_upload(self, token: str, body: bytes) -> None:
        with self.server.lock:  # a signed URL: no Authorization, like GCS
            entry = self.server.uploads.get(token)
        if entry is None:
            return self._json(404, {"detail": "Upload URL not found"})
        self.backend.store(entry[0], body, self.headers.get("Content-Type") or entry[1])
        self._send(200, b"", "text/plain")

    def _cdn_token(self) -> None:
        if not self._authorized():
            return
        token = uuid.uuid4().hex
        with self.server.lock:
            self.server.tokens.add(token)
        expires = datetime.now(timezone.utc) + timedelta(hours=1)
        self._json(
            200,
            {
                "token": token,
                "token_type": "Bearer",
                "base_url": self._base(),
                "expires_at": expires.isoformat(),
            },
        )

    def _cdn_upload(self, body: bytes) -> None:
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        with self.server.lock:
            known = scheme == "Bearer" and token in self.server.tokens
        if not known:
            return self._json(401, NO_USER)
        if self._locked():
            return
        name = sc.safe_name(self.headers.get("X-Fal-File-Name"))
        key = self.backend.store(
            f"{uuid.uuid4().hex}/{name}",
            body,
            self.headers.get("Content-Type") or "application/octet-stream",
        )
        self._json(200, {"access_url": f"{self._base()}/files/{key}"})

    # ---- plumbing ----
    def _authorized(self) -> bool:
        keys = self.server.keys
        scheme, _, key = (self.headers.get("Authorization") or "").partition(" ")
        if scheme == "Key" and key.strip() and (keys is None or key.strip() in keys):
            return True
        self._json(401, NO_USER)
        return False

    def _locked(self) -> bool:
        if self.backend.faults.active("locked"):
            self._json(403, sc.LOCKED)
            return True
        return False

    def _drain_chunked(self) -> None:
        total = 0
        while total < DRAIN_MAX_BYTES:
            size = int((self.rfile.readline(64).split(b";")[0].strip() or b"0"), 16)
            if size == 0:
                self.rfile.readline(64)
                return
            total += len(self.rfile.read(size + 2))

    def _base(self) -> str:
        return f"{self.server.scheme}://{self.headers.get('Host') or self.server.netloc}"

    def _read_body(self) -> bytes | None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            self._drain_chunked()
            self._json(411, {"detail": "Length Required"})
            return None
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body would pass for the next request
            # Read what was sent (up to a cap) so closing does not reset the connection
            # before the client has read the 413.
            left = min(n, DRAIN_MAX_BYTES)
            while left > 0 and (chunk := self.rfile.read(min(PACE_CHUNK, left))):
                left -= len(chunk)
            self._json(413, {"detail": f"Request body larger than {MAX_BODY_BYTES} bytes"})
            return None
        chunks, t0 = [], time.monotonic()
        while self._bytes_in < n:
            chunk = self.rfile.read(min(PACE_CHUNK, n - self._bytes_in))
            if not chunk:
                raise ConnectionResetError("client closed while sending the body")
            chunks.append(chunk)
            self._bytes_in += len(chunk)
            self._pace(self._bytes_in, t0)
        return b"".join(chunks)

    def _pace(self, done: int, t0: float) -> None:
        if self.server.rate:
            ahead = done / self.server.rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)

    def _json(self, code: int, body, headers: dict | None = None) -> None:
        self._send(code, json.dumps(body).encode(), "application/json", headers)

    def _send(
        self, code: int, data: bytes, ctype: str, headers: dict | None = None, rid: bool = True
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if rid and self._rid:  # fal's own servers tag every reply about a request (§2.7)
            self.send_header("x-fal-request-id", self._rid)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:  # say so, or the client reuses a socket we are closing
            self.send_header("Connection", "close")
        self._status, t0 = code, time.monotonic()
        chunks = [data[i : i + PACE_CHUNK] for i in range(0, len(data), PACE_CHUNK)] or [b""]
        for i, chunk in enumerate(chunks):
            self._bytes_out += len(chunk)
            self._pace(self._bytes_out, t0)  # pace first: the last write ends the exchange
            if i == len(chunks) - 1:
                self._record()
            if i == 0:
                self.end_headers()
            self.wfile.write(chunk)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        addr,
        backend: sc.Backend,
        ssl_ctx,
        *,
        keys,
        bandwidth_mbit,
        latency_ms,
        log_path,
        keepalive,
    ) -> None:
        super().__init__(addr, _Handler)
        self.backend, self.ssl_ctx = backend, ssl_ctx
        self.keys = None if keys is None else frozenset(keys)
        self.rate = bandwidth_mbit * 1e6 / 8 if bandwidth_mbit else None  # bytes per second
        self.latency, self.keepalive = (latency_ms or 0) / 1000.0, keepalive
        self.scheme, addr = "https" if ssl_ctx else "http", (addr[0], self.server_address[1])
        self.netloc = f"{addr[0] if addr[0] not in ('', '0.0.0.0') else '127.0.0.1'}:{addr[1]}"
        self.lock = threading.Lock()  # guards everything below
        self.uploads: dict[str, tuple[str, str]] = {}  # upload token → (file key, content type)
        self.tokens: set[str] = set()  # CDN bearer tokens handed out
        self.events: list[dict] = []
        self.log_file = open(log_path, "a", encoding="utf-8") if log_path else None  # noqa: SIM115
        self._conns: set = set()

    def get_request(self):
        sock, addr = super().get_request()
        # Headers and body go out in separate writes: without NODELAY, Nagle holds the body
        # until the client's delayed ACK (40 ms), which real CDNs don't add.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_ctx:
            sock = self.ssl_ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def record(self, event: dict, *, request: bool = True) -> None:
        """Log one exchange (``request``) or one job event (log file only)."""
        with self.lock:
            if request:
                self.events.append(event)
            if self.log_file:
                self.log_file.write(json.dumps(event) + "\n")
                self.log_file.flush()

    def track(self, conn, alive: bool) -> None:
        with self.lock:
            (self._conns.add if alive else self._conns.discard)(conn)

    def close_connections(self) -> None:
        with self.lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # failed handshakes, resets: expected
            super().handle_error(request, client_address)


class LocalServer:
    """A running server: `.base_url`, `.submits`, `.log`, `.stop()`; a context manager."""

    def __init__(self, httpd: _Server) -> None:
        self._httpd, self._backend = httpd, httpd.backend
        self.base_url = f"{httpd.scheme}://{httpd.netloc}"
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fal-local",
            daemon=True,
        )
        self._thread.start()

    @property
    def submits(self) -> list[str]:
        """Request ids of accepted submits, in order (a submit refused with 429 is not one)."""
        with self._backend.lock:
            return list(self._backend.submits)

    @property
    def log(self) -> list[dict]:
        """One event per request: method, path, query, status, request_id, headers (no auth)."""
        with self._httpd.lock:
            return [dict(e) for e in self._httpd.events]

    def price_usd(self, request_id: str) -> float | None:
        """§7.4 price of a completed request's output, None before that."""
        job = self._backend.jobs.get(request_id)
        return None if job is None or job.size is None else sc.price_usd(*job.size)

    def stop(self) -> None:
        if self._backend.stopping.is_set():
            return
        self._backend.stop()
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        with self._httpd.lock:
            log_file, self._httpd.log_file = self._httpd.log_file, None
        if log_file:
            log_file.close()

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_server(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    queue_seconds: float = 0.0,
    run_seconds: float = 0.0,
    scenarios=(),
    keys=None,
    tls_cert=None,
    tls_key=None,
    bandwidth_mbit: float | None = None,
    latency_ms: float | None = None,
    log_path=None,
    sse_keepalive_s: float = SSE_KEEPALIVE_S,
) -> LocalServer:
    """Listen (port 0 = any free port) and serve from a background thread."""
    backend = sc.Backend(
        queue_seconds=queue_seconds,
        run_seconds=run_seconds,
        scenarios=scenarios,
        local_hosts=[host],
    )
    ctx = None
    if tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(tls_cert, tls_key)
    httpd = _Server(
        (host, port),
        backend,
        ctx,
        keys=keys,
        log_path=log_path,
        bandwidth_mbit=bandwidth_mbit,
        latency_ms=latency_ms,
        keepalive=sse_keepalive_s,
    )
    backend.on_complete = lambda job, epoch: httpd.record(
        {"event": "completed", "request_id": job.id, "epoch": epoch}, request=False
    )
    return LocalServer(httpd)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Local fal server for fal-ai/flux-2-pro/outpaint.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = any free port")
    p.add_argument("--tls-cert", help="PEM certificate (chain); serves https")
    p.add_argument("--tls-key", help="PEM private key for --tls-cert")
    p.add_argument("--queue-seconds", type=float, default=0.0)
    p.add_argument("--run-seconds", type=float, default=0.0)
    p.add_argument("--scenario", default="", help=", ".join(sorted(sc.NAMES)))
    p.add_argument("--bandwidth", type=float, help="Mbit/s for request and response bodies")
    p.add_argument("--latency", type=float, help="ms added before every response")
    p.add_argument("--log", help="append one JSON line per request (never the key)")
    p.add_argument("--keys", help="comma-separated accepted keys (default: any)")
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    try:
        scenarios = sc.parse(args.scenario)
    except ValueError as exc:
        p.error(str(exc))
    server = start_server(
        host=args.host,
        port=args.port,
        queue_seconds=args.queue_seconds,
        run_seconds=args.run_seconds,
        scenarios=scenarios,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        bandwidth_mbit=args.bandwidth,
        latency_ms=args.latency,
        log_path=args.log,
        keys=[k for k in args.keys.split(",") if k] if args.keys else None,
    )
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    print(f"READY {server.base_url}", flush=True)
    while not done.wait(0.5):  # a bare wait() would not let the signal handler run
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
