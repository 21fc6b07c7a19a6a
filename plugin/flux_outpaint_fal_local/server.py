"""A local server that speaks fal's queue protocol for `fal-ai/flux-2-pro/outpaint`.

    python3 scripts/fal_local.py [--host H] [--port N] [--tls-cert F --tls-key F]
        [--queue-seconds S] [--run-seconds S] [--scenario NAME,…] [--bandwidth MBIT]
        [--latency MS] [--log FILE] [--keys K1,K2]

prints ``READY <base_url>`` once listening and serves until SIGINT/SIGTERM; in process:
``with start_server(...) as srv: srv.base_url``. It follows fal-protocol.md §8: queue routes
(trailing slash or not, ``/outpaint`` segment or not), Key auth, 202/200 status with logs, SSE
status stream, result and cancel outcomes, storage (fal's REST host and CDN, on this origin).
Routes: ``routes``; job lifecycle: ``backend``; fault scenarios: ``scenarios``; the "model":
``fill``. Choices where fal is undocumented (§9): unknown input fields are ignored and types
are strict; all-zero expansion, canvas > 4,194,304 px or a side < 64 px → 422 at result time
(never at submit); a result fetched early → 400 "Request is still in progress"; a cancelled
request ends COMPLETED with error, result 499; unknown id → 404; results expire 1 h after
completion (6 min if ≥ 10 KB); bodies > 64 MiB → 413 (no multipart upload); webhooks are
accepted but never called.
"""

from __future__ import annotations

import argparse
import os
import signal
import ssl
import sys
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from .backend import Backend, price_usd
from .listener import Listener
from .routes import SSE_KEEPALIVE_S, Handler
from .scenarios import known as known_scenarios
from .scenarios import parse as parse_scenarios


class LocalServer:
    """A running server: `.base_url`, `.submits`, `.log`, `.stop()`; a context manager."""

    def __init__(self, httpd: Listener) -> None:
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
    def log(self) -> list[dict[str, Any]]:
        """One event per request: method, path, query, status, request_id, headers (no auth)."""
        with self._httpd.lock:
            return [dict(e) for e in self._httpd.events]

    def price_usd(self, request_id: str) -> float | None:
        """§7.4 price of a completed request's output, None before that."""
        job = self._backend.jobs.get(request_id)
        return None if job is None or job.size is None else price_usd(*job.size)

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

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_server(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    queue_seconds: float = 0.0,
    run_seconds: float = 0.0,
    scenarios: Iterable[str] = (),
    keys: Iterable[str] | None = None,
    tls_cert: str | os.PathLike[str] | None = None,
    tls_key: str | os.PathLike[str] | None = None,
    bandwidth_mbit: float | None = None,
    latency_ms: float | None = None,
    log_path: str | os.PathLike[str] | None = None,
    sse_keepalive_s: float = SSE_KEEPALIVE_S,
) -> LocalServer:
    """Listen (port 0 = any free port) and serve from a background thread."""
    backend = Backend(
        queue_seconds=queue_seconds,
        run_seconds=run_seconds,
        scenarios=scenarios,
        local_hosts=[host],
    )
    ctx = None
    if tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(tls_cert, tls_key)
    httpd = Listener(
        (host, port),
        Handler,
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
    p.add_argument("--scenario", default="", help=", ".join(sorted(known_scenarios())))
    p.add_argument("--bandwidth", type=float, help="Mbit/s for request and response bodies")
    p.add_argument("--latency", type=float, help="ms added before every response")
    p.add_argument("--log", help="append one JSON line per request (never the key)")
    p.add_argument("--keys", help="comma-separated accepted keys (default: any)")
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    try:
        scenarios = parse_scenarios(args.scenario)
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
