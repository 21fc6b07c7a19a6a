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

Hostile servers: every call goes through ``caller.Caller`` (a total-time budget per attempt
enforced at the socket, a cancel flag that interrupts a blocked read, capped bodies, refused
redirects, final TLS certificate failures); every string taken from an answer is cleaned
(``errors.clean``) before it goes anywhere, and URLs the server returns are used only when
they point back at the server itself and carry nothing but a path.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from . import __version__, download, netbudget, retry, settings, sse
from . import errors as err
from .caller import Caller, json_object, json_value
from .errors import CancelledError, FinishedLateError, OutpaintTimeoutError
from .i18n import N_, _
from .retry import DEFAULT_TIMEOUTS, Op, Timeouts
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
            raise err.ConfigError(_("The fal API key is empty or contains spaces"))
        self._api_key = key
        self._secrets = err.secrets_of(key)
        self.app_id = app_id.strip("/")
        self._rest_url = settings.rest_base_url(self.base_url)
        self._trusted = {download.origin(self.base_url), download.origin(self._rest_url)}
        self._timeouts = timeouts
        self._clock = clock
        self._use_stream = use_stream
        self._scale = settings.time_scale() if time_scale is None else time_scale
        self._http = httpx.Client(
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT, **download.REQUEST_HEADERS},
        )
        # Bounds every socket operation by the call's budget and cancel flag (a no-op for
        # injected transports without sockets, e.g. the tests' MockTransport).
        self.budgeted = netbudget.install(self._http)
        self._calls = Caller(
            self._http,
            secrets=self._secrets,
            auth_for=self._auth_for,
            timeouts=timeouts,
            sleep=sleep,
            clock=clock,
            rand=rand,
            time_scale=self._scale,
        )

    def __repr__(self) -> str:
        return f"FalQueueClient(base_url={self.base_url!r}, app_id={self.app_id!r}, key=***)"

    @property
    def api_key_value(self) -> str:
        """The key itself, only so callers can redact it from text they print."""
        return self._api_key

    @property
    def secrets(self) -> tuple[str, ...]:
        """What must be redacted from anything shown or stored: the key and its halves."""
        return self._secrets

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
        cancel: threading.Event | None = None,
    ) -> str:
        """Put bytes into fal storage (initiate → PUT → file_url); returns the file URL."""
        _response, body = self._calls.call(
            Op.UPLOAD,
            "POST",
            f"{self._rest_url}/storage/upload/initiate",
            params={"storage_type": UPLOAD_STORAGE_TYPE},
            json={"file_name": file_name, "content_type": content_type},
            deadline=deadline,
            cancel=cancel,
        )
        info = json_object(body)
        upload_url, file_url = info.get("upload_url"), info.get("file_url")
        if not isinstance(upload_url, str) or not isinstance(file_url, str) or not file_url:
            raise err.ApiError(_("fal storage answered without an upload URL"))
        try:  # the same rule as for downloads: never PUT pixels over plain http elsewhere
            usable = download.check_url(upload_url, self.base_url) == "http"
        except err.ResultError:
            usable = False
        if not usable:
            raise err.ApiError(_("fal storage gave an upload URL that is not https"))
        self._calls.call(
            Op.UPLOAD,
            "PUT",
            upload_url,
            content=data,
            headers={"Content-Type": content_type},
            deadline=deadline,
            cancel=cancel,
        )
        return file_url

    def submit(
        self,
        payload: Mapping[str, Any],
        *,
        deadline: float | None = None,
        cancel: threading.Event | None = None,
    ) -> RequestHandle:
        """Queue one job.  Never repeated once fal may have accepted it (SubmitUnknownError).

        A cancel set while the submit is on the wire gives it ``SUBMIT_CANCEL_GRACE_S`` to
        bring back its request id (so the caller can cancel the request on fal); a cancel set
        before it is sent sends nothing.
        """
        _response, body = self._calls.call(
            Op.SUBMIT,
            "POST",
            f"{self.base_url}/{self.app_id}",
            json=dict(payload),
            deadline=deadline,
            cancel=cancel,
        )
        info = json_object(body)
        request_id = info.get("request_id")
        if not isinstance(request_id, str) or not REQUEST_ID.fullmatch(request_id):
            raise err.SubmitUnknownError(
                _(
                    "fal accepted the submit but its answer has no usable request id; it was "
                    "not sent again"
                )
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

    def status(
        self,
        handle: RequestHandle,
        *,
        deadline: float | None = None,
        cancel: threading.Event | None = None,
    ) -> Status:
        """One status check, with every log line the server currently shows."""
        code, body = self._poll(handle, deadline, cancel)
        return parse_status(body, code, LogTracker(self._secrets))

    def _poll(
        self, handle: RequestHandle, deadline: float | None, cancel: threading.Event | None
    ) -> tuple[int, dict[str, Any]]:
        """One status request with every log line: its HTTP status and JSON object."""
        response, body = self._calls.call(
            Op.STATUS,
            "GET",
            handle.status_url,
            params={"logs": "1"},
            deadline=deadline,
            cancel=cancel,
            request_id=handle.request_id,
        )
        return response.status_code, json_object(body)

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
        logs = LogTracker(self._secrets)

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
            raise self.cancelled_on_fal(handle) from None
        except OutpaintTimeoutError as exc:
            raise self.timed_out_on_fal(handle, exc) from None

    def cancelled_on_fal(self, handle: RequestHandle) -> CancelledError:
        """After a user cancel: ask fal to cancel (briefly); the error that says how it went."""
        outcome = self.cancel_quietly(handle, retry.CANCEL_BUDGET_S)
        note = _CANCEL_NOTES.get(outcome, _CANCEL_NOTES["NOT_FOUND"])
        return CancelledError(_(note), request_id=handle.request_id)

    def timed_out_on_fal(
        self, handle: RequestHandle, exc: OutpaintTimeoutError
    ) -> OutpaintTimeoutError:
        """After our deadline: ask fal to cancel (very briefly); the error that says so."""
        outcome = self.cancel_quietly(handle, retry.CANCEL_AFTER_DEADLINE_S)
        if outcome == "ALREADY_COMPLETED":  # its result is there: recoverable
            note = _("it had already finished: recover it from the journal")
            return FinishedLateError(
                _("{problem} ({note})").format(problem=exc, note=note), request_id=handle.request_id
            )
        note = _("fal was asked to cancel it")
        return OutpaintTimeoutError(
            _("{problem} ({note})").format(problem=exc, note=note), request_id=handle.request_id
        )

    def result(
        self,
        handle: RequestHandle,
        *,
        deadline: float | None = None,
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]:
        """The output JSON of a COMPLETED request, or the model's error as an exception."""
        _response, body = self._calls.call(
            Op.RESULT,
            "GET",
            handle.response_url,
            deadline=deadline,
            cancel=cancel,
            request_id=handle.request_id,
        )
        data = json_value(body)
        if not isinstance(data, dict):
            raise err.ResultError(
                _("fal returned a result that is not a JSON object"), request_id=handle.request_id
            )
        return data

    def cancel(self, handle: RequestHandle, *, deadline: float | None = None) -> str:
        """Ask fal to cancel; returns one of CANCEL_OUTCOMES."""
        response, body = self._calls.call(
            Op.CANCEL,
            "PUT",
            handle.cancel_url,
            ok=(400, 404),
            deadline=deadline,
            request_id=handle.request_id,
        )
        said = json_object(body).get("status")
        if isinstance(said, str) and said in CANCEL_OUTCOMES:
            return said
        return {400: "ALREADY_COMPLETED", 404: "NOT_FOUND"}.get(
            response.status_code, "CANCELLATION_REQUESTED"
        )

    def download(
        self,
        result_json: Mapping[str, Any],
        *,
        deadline: float | None = None,
        cancel: threading.Event | None = None,
    ) -> tuple[bytes, str]:
        """The result image's bytes and content type, under download.py's policy."""

        def fetch_url(url: str) -> tuple[httpx.Response, bytes]:
            return self._calls.call(
                Op.DOWNLOAD,
                "GET",
                url,
                deadline=deadline,
                cancel=cancel,
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
        stop = threading.Event()
        end = self._calls.real_end(None, deadline)

        def stopped() -> bool:
            return stop.is_set() or (cancel is not None and cancel.is_set())

        def chunks() -> Iterator[bytes]:
            # In the pump's thread: its reads wake for ``stop`` and end at the deadline.
            timeout = httpx.Timeout(t.connect, read=t.stream_idle, write=t.write, pool=t.pool)
            headers = {**self._auth_for(url), "Accept": "text/event-stream"}
            with (
                netbudget.limit(end, stopped),
                self._http.stream(
                    "GET", url, params={"logs": "1"}, headers=headers, timeout=timeout
                ) as response,
            ):
                kind = response.headers.get("content-type", "")
                if response.status_code != 200 or not kind.startswith("text/event-stream"):
                    raise err.NetworkError(f"no status stream (HTTP {response.status_code})")
                # An endless stream has no total to cap: a compressed one is not read at
                # all (polling takes over), so no chunk can inflate beyond what was sent.
                try:
                    coding = download.content_coding(response)
                except ValueError:
                    coding = "refused"
                if coding is not None:
                    raise err.NetworkError("a compressed status stream")
                yield from response.iter_raw()

        items: queue.Queue[sse.StreamItem] = queue.Queue(maxsize=sse.QUEUE_SIZE)
        threading.Thread(
            target=sse.pump,
            args=(chunks, items, stop),
            daemon=True,
            name=f"fal-status-{handle.request_id[:8]}",
        ).start()
        heard = self._clock()
        try:
            while True:
                self._calls.check(cancel, deadline)
                try:
                    item = items.get(timeout=retry.CANCEL_CHECK_INTERVAL_S)
                except queue.Empty:
                    # A stream can stall without closing (fal sends keep-alives; a proxy may
                    # swallow them): a quiet stream is backed by an occasional poll, so a
                    # finished job is noticed within seconds instead of at the idle timeout.
                    if self._clock() - heard >= retry.STREAM_SILENCE_POLL_S * self._scale:
                        heard = self._clock()
                        code, body = self._poll(handle, deadline, cancel)
                        if isinstance(emit(body, code), Completed):
                            return True
                    continue
                heard = self._clock()
                if item.kind == "end" or item.event is None:
                    return False
                status = json_value(item.event.data.encode("utf-8"))
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
            self._calls.check(cancel, deadline)
            code, body = self._poll(handle, deadline, cancel)
            status = emit(body, code)
            if isinstance(status, Completed):
                return
            interval = (
                retry.POLL_INTERVAL_QUEUED_S
                if isinstance(status, Queued)
                else retry.POLL_INTERVAL_RUNNING_S
            )
            self._calls.pause(interval * self._scale, cancel, deadline)

    def cancel_quietly(self, handle: RequestHandle, budget_s: float = retry.CANCEL_BUDGET_S) -> str:
        """Best-effort cancel within ``budget_s`` (retries included); "UNKNOWN" on failure."""
        try:
            return self.cancel(handle, deadline=self._clock() + budget_s)
        except Exception:  # noqa: BLE001 - best effort: the caller already fails for a reason
            return "UNKNOWN"

    # -- one HTTP call with retries ------------------------------------------------------

    def _auth_for(self, url: str) -> dict[str, str]:
        try:
            trusted = download.origin(url) in self._trusted
        except ValueError:
            trusted = False
        return {"Authorization": f"Key {self._api_key}"} if trusted else {}

    def _own_url(self, given: object, fallback: str) -> str:
        """A URL from the server is used only if it points back at the server itself and
        carries nothing but a path: no query (where a key could hide), no fragment, no user
        name, no control characters or spaces."""
        if not isinstance(given, str) or not given.isascii():
            return fallback
        if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in given):
            return fallback
        try:
            parts = urlsplit(given)
            same = download.origin(given) == download.origin(self.base_url)
        except ValueError:
            return fallback
        if not same or parts.query or parts.fragment or "@" in parts.netloc:
            return fallback
        return given


_Emit = Callable[[Mapping[str, Any], "int | None"], Status]

_CANCEL_NOTES = {
    "CANCELLATION_REQUESTED": N_("Cancelled (fal was asked to stop the request)"),
    "OK": N_("Cancelled (fal was asked to stop the request)"),
    "ALREADY_COMPLETED": N_(
        "Cancelled (the request had already finished on fal; its result "
        "can be recovered from the journal)"
    ),
    "NOT_FOUND": N_("Cancelled"),
    "UNKNOWN": N_("Cancelled (fal did not confirm the cancel)"),
}
