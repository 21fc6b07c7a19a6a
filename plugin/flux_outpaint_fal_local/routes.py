"""The local fal server's HTTP side: routes, auth, SSE, storage, pacing (fal-protocol.md §8).

One ``Handler`` per connection; the queue behind it is ``backend``, the misbehaviour
``scenarios`` asks for comes from ``hostile``; ``server`` listens and owns the shared state.
"""

from __future__ import annotations

import json
import ssl
import time
import traceback
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import attacks, hostile
from .backend import APP, Backend, Job, now_iso, safe_name
from .listener import Listener
from .responses import INGRESS_503_HTML, INTERNAL_ERROR, LOCKED, NO_USER, RATE_LIMITED

APP_PATH = "outpaint"
SSE_KEEPALIVE_S = 15.0  # §2.4
MAX_BODY_BYTES = 64 * 1024 * 1024
DRAIN_MAX_BYTES = 4 * MAX_BODY_BYTES  # refused bodies up to this size are read before replying
MIN_REQUEST_TIMEOUT_S = 0.1  # X-Fal-Request-Timeout must exceed this (docs: "min > 0.1")
CONNECTION_IDLE_S = 60.0
PACE_CHUNK = 16 * 1024
QUEUE_OPS = {"": "GET", "status": "GET", "status/stream": "GET", "cancel": "PUT"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every reply but SSE carries Content-Length
    server_version = "fal-local"
    timeout = CONNECTION_IDLE_S
    server: Listener

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):  # handshake here, not in the accept loop
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()
        self.server.track(self.request, True)

    def finish(self) -> None:
        self.server.track(self.request, False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # events go to Listener.record
        pass

    def do_GET(self) -> None:
        self._handle(self.command)

    do_POST = do_PUT = do_GET

    def _handle(self, method: str) -> None:
        srv = self.server
        self.backend: Backend = srv.backend
        self._t0, self._parts = time.monotonic(), urlsplit(self.path)
        self._status: int | None = None
        self._rid: str | None = None
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
                "time": now_iso(),
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
            if faults.active("gzip-bomb-image"):
                return self._nested_bomb(200, entry[1])
            if faults.active("gzip-result"):
                gz = attacks.gzipped(entry[0])
                return self._send(200, gz, entry[1], {"Content-Encoding": "gzip"})
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
        if segs == [*APP, APP_PATH] and method == "POST":
            return self._submit(body)
        return self._json(404, {"detail": "Not Found"})

    # ---- queue ----
    def _submit(self, body: bytes) -> None:
        faults = self.backend.faults
        if not self._authorized() or self._locked():
            return
        if faults.active("gzip-bomb-submit"):  # an error body, before any job exists
            return self._nested_bomb(500, "application/json")
        if faults.once("429-once"):
            return self._json(429, RATE_LIMITED, {"Retry-After": "1"})
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

    def _request_op(self, op: str, app: tuple[str, ...], rid: str) -> None:
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
                return self._send(503, INGRESS_503_HTML.encode(), "text/html", rid=False)
            if faults.once("500-once"):
                return self._json(500, INTERNAL_ERROR)
            if faults.active("gzip-bomb-status"):
                kind = "text/event-stream" if op == "status/stream" else "application/json"
                return self._nested_bomb(200, kind)
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
        if faults.active("forged-request-id"):  # busy for ever: the client gives up, names it
            return self._json(429, RATE_LIMITED, {"Retry-After": "1"})
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
            if faults.active("gzip-bomb-result"):
                return self._nested_bomb(200, "application/json")
            if faults.active("gzip-result"):
                gz = attacks.gzipped(json.dumps(body).encode())
                return self._send(200, gz, "application/json", {"Content-Encoding": "gzip"})
        self._json(code, body, headers)

    def _logs_wanted(self) -> bool:
        return self._query.get("logs", ["0"])[-1] in ("1", "true", "True")

    def _stream(self, job: Job) -> None:
        backend, keepalive = self.backend, self.server.keepalive
        self.close_connection = True  # the stream ends when the connection does
        self.send_response(200)
        for name, value in (
            ("Content-Type", "text/event-stream"),
            ("Cache-Control", "no-cache"),
            ("Connection", "close"),
            ("x-fal-request-id", job.id),
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
        key = f"{uuid.uuid4().hex}/{safe_name(meta.get('file_name'))}"
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
        name = safe_name(self.headers.get("X-Fal-File-Name"))
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
            self._json(403, LOCKED)
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

    def _nested_bomb(self, code: int, ctype: str) -> None:
        """A body in two layers of gzip that inflates to attacks.GZIP_BOMB_BYTES."""
        coding = {"Content-Encoding": attacks.NESTED_CODING}
        self._send(code, attacks.nested_gzip_bomb(), ctype, coding, rid=code < 400)

    def _json(self, code: int, body: object, headers: dict[str, str] | None = None) -> None:
        self._send(code, json.dumps(body).encode(), "application/json", headers)

    def _send(
        self,
        code: int,
        data: bytes,
        ctype: str,
        headers: dict[str, str] | None = None,
        rid: bool = True,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if self.backend.faults.active("forged-request-id"):
            self.send_header("x-fal-request-id", attacks.FORGED_ID)
        elif rid and self._rid:  # fal's own servers tag every reply about a request (§2.7)
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
