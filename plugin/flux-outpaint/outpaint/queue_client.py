"""The fal queue client: upload, submit, wait, result, cancel, download — over httpx.

Submit is ``POST {base}/{app_id}``; its answer carries ``request_id`` and the status, response
and cancel URLs every later call uses.  Status is 202 while pending and 200 once COMPLETED; a
failed run is still COMPLETED and its error shows only when the result is fetched.

Waiting prefers the status event stream (``…/status/stream?logs=1``): COMPLETED is acted on
the moment it arrives.  The stream is read in a worker thread so the waiting thread can check
the cancel flag and the deadline every ``CANCEL_CHECK_INTERVAL_S`` however quiet the stream
is.  If the stream is unavailable or breaks, polling ``…/status?logs=1`` takes over.

Retries follow ``retry.decide``; see retry.py for why a submit is never repeated once fal may
have accepted it.  The API key is sent only to the configured server's origin and fal's
storage API, never to an image host, and never appears in a message or a repr.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from . import __version__, download, retry, settings, sse
from . import errors as err
from .errors import CancelledError, OutpaintTimeoutError, error_from_response, redact
from .retry import DEFAULT_TIMEOUTS, ErrorKind, Op, Timeouts
from .status import (
    REQUEST_ID,
    Completed,
    LogTracker,
    Queued,
    RequestHandle,
    Status,
    parse_status,
)

__all__ = ["APP_ID", "CANCEL_OUTCOMES", "FalQueueClient"]

APP_ID = "fal-ai/flux-2-pro/outpaint"
USER_AGENT = f"flux-outpaint/{__version__}"
CANCEL_OUTCOMES = ("CANCELLATION_REQUESTED", "ALREADY_COMPLETED", "NOT_FOUND", "OK")
UPLOAD_STORAGE_TYPE = "fal-cdn-v3"
# Each retry is told here (INFO) with its reason; the CLI shows it with -v.  The reason is
# built from status codes and error kinds only, never from server text.
log = logging.getLogger(__name__)


class FalQueueClient:
    """One client per server and key; safe to share between threads."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        app_id: str = APP_ID,
        transport: httpx.BaseTransport | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        use_stream: bool = True,
        time_scale: float | None = None,
    ) -> None:
        self.base_url = settings.check_base_url(base_url)
        key = (api_key or "").strip()
        if not key or any(ch.isspace() or ord(ch) < 32 for ch in key):
            raise err.ConfigError("The fal API key is empty or contains spaces")
        self._api_key = key
        self.app_id = app_id.strip("/")
        self._rest_url = settings.rest_base_url(self.base_url)
        self._trusted = {download.origin(self.base_url), download.origin(self._rest_url)}
        self._timeouts = timeouts
        self._sleep, self._clock, self._rand = sleep, clock, rand
        self._use_stream = use_stream
        self._scale = settings.time_scale() if time_scale is None else time_scale
        self._http = httpx.Client(
            transport=transport, follow_redirects=False, headers={"User-Agent": USER_AGENT}
        )

    def __repr__(self) -> str:
        return f"FalQueueClient(base_url={self.base_url!r}, app_id={self.app_id!r}, key=***)"

    @property
    def api_key_value(self) -> str:
        """The key itself, only so callers can redact it from text they print."""
        return self._api_key

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FalQueueClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- operations ----------------------------------------------------------------------

    def upload(
        self,
        data: bytes,
        content_type: str,
        file_name: str = "upload.bin",
        *,
        deadline: float | None = None,
    ) -> str:
        """Put bytes into fal storage (initiate → PUT → file_url); returns the file URL."""
        _, body = self._call(
            Op.UPLOAD,
            "POST",
            f"{self._rest_url}/storage/upload/initiate",
            params={"storage_type": UPLOAD_STORAGE_TYPE},
            json={"file_name": file_name, "content_type": content_type},
            deadline=deadline,
        )
        info = _json_object(body)
        upload_url, file_url = info.get("upload_url"), info.get("file_url")
        if not isinstance(upload_url, str) or not isinstance(file_url, str) or not file_url:
            raise err.ApiError("fal storage answered without an upload URL")
        try:  # the same rule as for downloads: never PUT pixels over plain http elsewhere
            usable = download.check_url(upload_url, self.base_url) == "http"
        except err.ResultError:
            usable = False
        if not usable:
            raise err.ApiError("fal storage gave an upload URL that is not https")
        self._call(
            Op.UPLOAD,
            "PUT",
            upload_url,
            content=data,
            headers={"Content-Type": content_type},
            deadline=deadline,
        )
        return file_url

    def submit(self, payload: Mapping[str, Any]) -> RequestHandle:
        """Queue one job.  Never repeated once fal may have accepted it (SubmitUnknownError)."""
        _, body = self._call(
            Op.SUBMIT, "POST", f"{self.base_url}/{self.app_id}", json=dict(payload)
        )
        info = _json_object(body)
        request_id = info.get("request_id")
        if not isinstance(request_id, str) or not REQUEST_ID.fullmatch(request_id):
            raise err.SubmitUnknownError(
                "fal accepted the submit but its answer has no usable request id; it was "
                "not sent again"
            )
        built = self.handle_for(request_id)
        return RequestHandle(
            request_id,
            self._own_url(info.get("status_url"), built.status_url),
            self._own_url(info.get("response_url"), built.response_url),
            self._own_url(info.get("cancel_url"), built.cancel_url),
        )

    def handle_for(self, request_id: str) -> RequestHandle:
        """URLs for a known request id: status, result and cancel use only owner/alias."""
        parts = self.app_id.split("/")
        keep = 3 if parts[0] in ("workflows", "comfy") else 2
        root = f"{self.base_url}/{'/'.join(parts[:keep])}/requests/{request_id}"
        return RequestHandle(request_id, f"{root}/status", root, f"{root}/cancel")

    def status(self, handle: RequestHandle, *, deadline: float | None = None) -> Status:
        """One status check, with every log line the server currently shows."""
        response, body = self._call(
            Op.STATUS,
            "GET",
            handle.status_url,
            params={"logs": "1"},
            deadline=deadline,
            request_id=handle.request_id,
        )
        return parse_status(_json_object(body), response.status_code, LogTracker())

    def wait(
        self,
        handle: RequestHandle,
        on_event: Callable[[Status], None] | None = None,
        deadline: float | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        """Return once the request is COMPLETED.  On cancel or deadline, cancel it on fal too.

        ``deadline`` is an absolute ``clock()`` value (time.monotonic by default).
        """
        logs = LogTracker()

        def emit(body: Mapping[str, Any], http_status: int | None) -> Status:
            status = parse_status(body, http_status, logs)
            if on_event is not None:
                on_event(status)
            return status

        try:
            if self._use_stream and self._wait_stream(handle, emit, deadline, cancel):
                return
            self._wait_polling(handle, emit, deadline, cancel)
        except CancelledError:
            outcome = self._cancel_quietly(handle)
            raise CancelledError(
                _CANCEL_NOTES.get(outcome, "Cancelled"), request_id=handle.request_id
            ) from None
        except OutpaintTimeoutError as exc:
            outcome = self._cancel_quietly(handle)
            note = (
                "it had already finished: recover it from the journal"
                if (outcome == "ALREADY_COMPLETED")
                else "fal was asked to cancel it"
            )
            raise OutpaintTimeoutError(f"{exc} ({note})", request_id=handle.request_id) from None

    def result(self, handle: RequestHandle, *, deadline: float | None = None) -> dict[str, Any]:
        """The output JSON of a COMPLETED request, or the model's error as an exception."""
        _, body = self._call(
            Op.RESULT, "GET", handle.response_url, deadline=deadline, request_id=handle.request_id
        )
        data = _json_value(body)
        if not isinstance(data, dict):
            raise err.ResultError(
                "fal returned a result that is not a JSON object", request_id=handle.request_id
            )
        return data

    def cancel(self, handle: RequestHandle, *, deadline: float | None = None) -> str:
        """Ask fal to cancel; returns one of CANCEL_OUTCOMES."""
        response, body = self._call(
            Op.CANCEL,
            "PUT",
            handle.cancel_url,
            ok=(400, 404),
            deadline=deadline,
            request_id=handle.request_id,
        )
        said = _json_object(body).get("status")
        if isinstance(said, str) and said in CANCEL_OUTCOMES:
            return said
        return {400: "ALREADY_COMPLETED", 404: "NOT_FOUND"}.get(
            response.status_code, "CANCELLATION_REQUESTED"
        )

    def download(
        self, result_json: Mapping[str, Any], *, deadline: float | None = None
    ) -> tuple[bytes, str]:
        """The result image's bytes and content type, under download.py's policy."""

        def fetch_url(url: str) -> tuple[httpx.Response, bytes]:
            return self._call(
                Op.DOWNLOAD,
                "GET",
                url,
                deadline=deadline,
                perform=lambda t: download.fetch(
                    self._http, url, headers=self._auth_for(url), timeout=t
                ),
            )

        return download.load_result_image(result_json, base_url=self.base_url, fetch_url=fetch_url)

    # -- waiting -------------------------------------------------------------------------

    def _wait_stream(
        self,
        handle: RequestHandle,
        emit: _Emit,
        deadline: float | None,
        cancel: threading.Event | None,
    ) -> bool:
        """True once COMPLETED arrived on the stream; False if polling must take over."""
        url = handle.status_url.rstrip("/") + "/stream"
        t = self._timeouts

        def chunks() -> Iterator[bytes]:
            timeout = httpx.Timeout(t.connect, read=t.stream_idle, write=t.write, pool=t.pool)
            headers = {**self._auth_for(url), "Accept": "text/event-stream"}
            with self._http.stream(
                "GET", url, params={"logs": "1"}, headers=headers, timeout=timeout
            ) as response:
                kind = response.headers.get("content-type", "")
                if response.status_code != 200 or not kind.startswith("text/event-stream"):
                    raise err.NetworkError(f"no status stream (HTTP {response.status_code})")
                yield from response.iter_bytes()

        items: queue.Queue[sse.StreamItem] = queue.Queue()
        stop = threading.Event()
        threading.Thread(
            target=sse.pump,
            args=(chunks, items, stop),
            daemon=True,
            name=f"fal-status-{handle.request_id[:8]}",
        ).start()
        heard = self._clock()
        try:
            while True:
                self._check(cancel, deadline)
                try:
                    item = items.get(timeout=retry.CANCEL_CHECK_INTERVAL_S)
                except queue.Empty:
                    # A stream can stall without closing (fal sends keep-alives; a proxy may
                    # swallow them): a quiet stream is backed by an occasional poll, so a
                    # finished job is noticed within seconds instead of at the idle timeout.
                    if self._clock() - heard >= retry.STREAM_SILENCE_POLL_S * self._scale:
                        heard = self._clock()
                        response, body = self._call(
                            Op.STATUS,
                            "GET",
                            handle.status_url,
                            params={"logs": "1"},
                            deadline=deadline,
                            cancel=cancel,
                            request_id=handle.request_id,
                        )
                        if isinstance(emit(_json_object(body), response.status_code), Completed):
                            return True
                    continue
                heard = self._clock()
                if item.kind == "end" or item.event is None:
                    return False
                status = _json_value(item.event.data.encode("utf-8"))
                if isinstance(status, dict) and isinstance(emit(status, None), Completed):
                    return True
        finally:
            stop.set()

    def _wait_polling(
        self,
        handle: RequestHandle,
        emit: _Emit,
        deadline: float | None,
        cancel: threading.Event | None,
    ) -> None:
        while True:
            self._check(cancel, deadline)
            response, body = self._call(
                Op.STATUS,
                "GET",
                handle.status_url,
                params={"logs": "1"},
                deadline=deadline,
                cancel=cancel,
                request_id=handle.request_id,
            )
            status = emit(_json_object(body), response.status_code)
            if isinstance(status, Completed):
                return
            interval = (
                retry.POLL_INTERVAL_QUEUED_S
                if isinstance(status, Queued)
                else retry.POLL_INTERVAL_RUNNING_S
            )
            self._pause(interval * self._scale, cancel, deadline)

    def _cancel_quietly(self, handle: RequestHandle) -> str:
        try:
            return self.cancel(handle, deadline=self._clock() + retry.CANCEL_BUDGET_S)
        except Exception:  # noqa: BLE001 - best effort: the caller already fails for a reason
            return "UNKNOWN"

    def _check(self, cancel: threading.Event | None, deadline: float | None) -> None:
        if cancel is not None and cancel.is_set():
            raise CancelledError("Cancelled")
        if deadline is not None and self._clock() >= deadline:
            raise OutpaintTimeoutError("No result from fal within the time limit")

    def _pause(
        self, seconds: float, cancel: threading.Event | None, deadline: float | None
    ) -> None:
        """Sleep in short steps so a cancel or the deadline is noticed within one step."""
        end = self._clock() + seconds
        while True:
            self._check(cancel, deadline)
            now = self._clock()
            step = min(end - now, retry.CANCEL_CHECK_INTERVAL_S)
            if deadline is not None:
                step = min(step, deadline - now)
            if step <= 0:
                if now >= end:
                    return
                continue
            self._sleep(step)

    # -- one HTTP call with retries ------------------------------------------------------

    def _call(
        self,
        op: Op,
        method: str,
        url: str,
        *,
        deadline: float | None = None,
        cancel: threading.Event | None = None,
        ok: tuple[int, ...] = (),
        request_id: str | None = None,
        perform: _Perform | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> tuple[httpx.Response, bytes]:
        """Send until success or ``retry.decide`` gives up; then raise the mapped error."""
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            timeout = self._timeout(op, deadline)
            response: httpx.Response | None = None
            kind: ErrorKind | None = None
            failure = ""  # only text: the httpx exception holds the request and its key header
            try:
                if perform is not None:
                    response, body = perform(timeout)
                else:
                    sent = {"Accept": "application/json", **self._auth_for(url), **(headers or {})}
                    response = self._http.request(
                        method, url, headers=sent, timeout=timeout, **kwargs
                    )
                    body = response.content
            except httpx.TransportError as exc:
                kind, failure = _error_kind(exc), self._transport_text(url, exc)
            if failure and kind is None:
                raise err.NetworkError(failure)
            code = None if response is None else response.status_code
            if response is not None and code is not None and (code < 400 or code in ok):
                return response, body
            seen = response.headers if response is not None else httpx.Headers()
            now = self._clock()
            decision = retry.decide(
                op,
                attempt,
                status=None if kind else code,
                error=kind,
                has_request_id="x-fal-request-id" in seen,
                user_timeout=seen.get("x-fal-request-timeout-type", "").lower() == "user",
                retry_after_s=retry.parse_retry_after(seen.get("retry-after"), time.time()),
                elapsed_s=now - started,
                remaining_s=None if deadline is None else deadline - now,
                rand=self._rand(),
                time_scale=self._scale,
            )
            if decision.retry:
                log.info(
                    "%s attempt %d failed (%s); retrying in %.1f s%s",
                    op.value,
                    attempt,
                    decision.reason,
                    decision.delay_s,
                    f" (request {request_id})" if request_id else "",
                )
                self._pause(decision.delay_s, cancel, deadline)
                continue
            if decision.outcome_unknown:
                raise err.SubmitUnknownError(
                    f"The submit reached {_host(url)} but its answer was lost "
                    f"({decision.reason}); fal may be running it, so it was not sent again"
                )
            if kind is not None or code is None:
                raise err.NetworkError(failure)
            raise error_from_response(
                code, seen, body, request_id=request_id, secrets=(self._api_key,)
            )

    def _timeout(self, op: Op, deadline: float | None) -> httpx.Timeout:
        t = self._timeouts
        read, write = t.read, t.write
        if op is Op.UPLOAD:
            read, write = t.upload, t.upload
        elif op is Op.DOWNLOAD:
            read = t.download
        values = [t.connect, read, write, t.pool]
        if deadline is not None:
            left = deadline - self._clock()
            if left <= 0:
                raise OutpaintTimeoutError("No result from fal within the time limit")
            values = [min(v, left) for v in values]
        return httpx.Timeout(values[0], read=values[1], write=values[2], pool=values[3])

    def _auth_for(self, url: str) -> dict[str, str]:
        try:
            trusted = download.origin(url) in self._trusted
        except ValueError:
            trusted = False
        return {"Authorization": f"Key {self._api_key}"} if trusted else {}

    def _own_url(self, given: object, fallback: str) -> str:
        """A URL from the server is used only if it points back at the server itself."""
        if isinstance(given, str):
            try:
                if download.origin(given) == download.origin(self.base_url):
                    return given
            except ValueError:
                pass
        return fallback

    def _transport_text(self, url: str, exc: BaseException) -> str:
        reason = redact(" ".join(str(exc).split())[:120] or type(exc).__name__, (self._api_key,))
        if _error_kind(exc) in retry.NOT_SENT_ERRORS:
            return f"Could not reach {_host(url)}: {reason}"
        return f"The connection to {_host(url)} failed: {reason}"


_Emit = Callable[[Mapping[str, Any], "int | None"], Status]
_Perform = Callable[[httpx.Timeout], "tuple[httpx.Response, bytes]"]

_CANCEL_NOTES = {
    "CANCELLATION_REQUESTED": "Cancelled (fal was asked to stop the request)",
    "OK": "Cancelled (fal was asked to stop the request)",
    "ALREADY_COMPLETED": "Cancelled (the request had already finished on fal; its result "
    "can be recovered from the journal)",
    "NOT_FOUND": "Cancelled",
    "UNKNOWN": "Cancelled (fal did not confirm the cancel)",
}


def _error_kind(exc: BaseException) -> ErrorKind | None:
    """How far a failed request got; None for failures that no retry can fix."""
    if isinstance(exc, httpx.ConnectTimeout):
        return ErrorKind.CONNECT_TIMEOUT
    if isinstance(exc, httpx.PoolTimeout):
        return ErrorKind.POOL_TIMEOUT
    if isinstance(exc, (httpx.ConnectError, httpx.ProxyError)):
        return ErrorKind.CONNECT
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.LocalProtocolError)):
        return None
    if isinstance(exc, (httpx.WriteError, httpx.WriteTimeout)):
        return ErrorKind.WRITE
    if isinstance(exc, httpx.ReadTimeout):
        return ErrorKind.READ_TIMEOUT
    return ErrorKind.READ  # read error, dropped connection, anything else: maybe sent


def _host(url: str) -> str:
    try:
        return urlsplit(url).netloc or url
    except ValueError:
        return "the server"


def _json_value(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _json_object(body: bytes) -> dict[str, Any]:
    data = _json_value(body)
    return data if isinstance(data, dict) else {}
