"""Test doubles shared by several test modules: a fake clock and fal behind httpx.MockTransport.

``FakeFal`` is the one scripted fal the unit tests talk to (the queue client, a job, a run of
variations); the local server (``flux_outpaint_fal_local``) is the one that listens on a socket.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import httpx

BASE = "https://queue.fal.run"
APP = "fal-ai/flux-2-pro"
SUBMIT_PATH = f"/{APP}/outpaint"
# Where fal's results live: result JSON names images on this host.
CDN = "v3b.fal.media"

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]
ROUTES = ("submit", "stream", "status", "cancel", "result", "file", "other")


class FakeClock:
    """A monotonic clock that only moves when slept on: backoff and polls take no real time.

    Pass the instance as ``clock=`` and its ``sleep`` as ``sleep=``; ``slept`` lists every
    pause asked for, in order.
    """

    def __init__(self, start: float = 100.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class FakeFal:
    """fal's queue and its file host, scripted: the transport of ``httpx.MockTransport(fal)``.

    Requests are routed as fal's queue routes them: ``submit`` (POST on the app), ``stream``
    (GET …/status/stream), ``status``, ``cancel`` (PUT …/cancel), ``result`` (GET
    …/requests/{id}), ``file`` (GET on fal's file host, ``CDN``) and ``other`` (anything else:
    uploads, hosts fal never names).  Each route answers from a script, a list whose last reply
    repeats; a reply is an ``httpx.Response``, an exception (raised: a transport failure) or a
    callable that makes the response from the request.  Unscripted, fal behaves: a submit
    is accepted as a new request (ids from ``ids``, then ``req-N``), status says COMPLETED, the
    result names ``{CDN}/files/{id}.png``, the file host serves ``image``, a cancel is
    accepted, and there is no status stream (404: the client polls).

    ``requests`` lists (route, request) in order; ``submitted`` the ids handed out; calls from
    several threads are safe.  What it does not model: time (the queue moves only as a
    script says), bodies sent slowly or cut short (the local server's hostile scenarios do).
    """

    def __init__(
        self,
        *,
        ids: Iterable[str] = (),
        image: bytes = b"",
        base: str = BASE,
        **routes: list[Reply],
    ) -> None:
        unknown = set(routes) - set(ROUTES)
        if unknown:
            raise TypeError(f"no such route: {', '.join(sorted(unknown))}")
        self.base, self.image = base.rstrip("/"), image
        self._ids = list(ids)
        self._lock = threading.Lock()
        self.routes: dict[str, list[Reply]] = {
            "submit": [self.accept],
            "stream": [httpx.Response(404)],
            "status": [status("COMPLETED")],
            "cancel": [httpx.Response(202, json={"status": "CANCELLATION_REQUESTED"})],
            "result": [lambda request: result(request_id(request))],
            "file": [lambda request: png(self.image)],
            "other": [httpx.Response(404)],
        }
        self.routes.update({name: list(script) for name, script in routes.items()})
        self.requests: list[tuple[str, httpx.Request]] = []
        self.submitted: list[str] = []

    def route(self, request: httpx.Request) -> str:
        path = request.url.path
        if request.url.host == CDN:
            return "file" if request.method == "GET" else "other"
        if request.method == "POST" and path == SUBMIT_PATH:
            return "submit"
        if path.endswith("/status/stream"):
            return "stream"
        if path.endswith("/status"):
            return "status"
        if request.method == "PUT" and path.endswith("/cancel"):
            return "cancel"
        if request.method == "GET" and f"/{APP}/requests/" in path and request_id(request):
            return "result"
        return "other"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        name = self.route(request)
        with self._lock:
            self.requests.append((name, request))
            script = self.routes[name]
            reply = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, httpx.Response):
            return reply
        return reply(request)

    def accept(self, request: httpx.Request) -> httpx.Response:
        """fal's answer to a submit it queued: a new request id and its URLs."""
        with self._lock:
            rid = self._ids.pop(0) if self._ids else f"req-{len(self.submitted) + 1}"
            self.submitted.append(rid)
        root = f"{self.base}/{APP}/requests/{rid}"
        return httpx.Response(
            200,
            json={
                "request_id": rid,
                "status": "IN_QUEUE",
                "queue_position": 0,
                "status_url": f"{root}/status",
                "response_url": root,
                "cancel_url": f"{root}/cancel",
            },
        )

    def count(self, route: str) -> int:
        return sum(1 for name, _ in self.requests if name == route)

    def bodies(self) -> list[bytes]:
        """What each submit sent."""
        return [r.content for name, r in self.requests if name == "submit"]

    def cancelled(self) -> list[str]:
        """The ids of the requests a cancel was sent for, in order."""
        return [request_id(r) for name, r in self.requests if name == "cancel"]


def request_id(request: httpx.Request) -> str:
    """The request id in a queue URL (…/requests/{id}[/status|/cancel]); "" when none."""
    _, found, rest = request.url.path.partition(f"/{APP}/requests/")
    return rest.split("/")[0] if found else ""


def status(state: str, code: int | None = None, **extra: Any) -> httpx.Response:
    """A status answer: 200 once COMPLETED, 202 before, as fal's queue gives them."""
    body = {"status": state, "logs": [], **extra}
    return httpx.Response(code or (200 if state == "COMPLETED" else 202), json=body)


def result(rid: str) -> httpx.Response:
    """The result of a request that succeeded: one image on fal's file host."""
    url = f"https://{CDN}/files/{rid}.png"
    return httpx.Response(200, json={"images": [{"url": url, "content_type": "image/png"}]})


def png(data: bytes) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "image/png"}, content=data)
