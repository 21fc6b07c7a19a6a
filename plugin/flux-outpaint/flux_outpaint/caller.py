"""One HTTP call to fal under the retry policy: budgets, caps, cancels, error mapping.

``Caller.call`` sends one request until it succeeds or ``retry.decide`` gives up, then raises
the mapped error from the exception tree.  Each attempt runs under ``netbudget.limit``: its
end is the op's total budget (``retry.Timeouts.*_total``) or the caller's deadline, whichever
comes first, and a cancel flag interrupts it within ``netbudget.SLICE_S`` (a submit only
after ``retry.SUBMIT_CANCEL_GRACE_S``, so that a request id already on its way is not lost).

Every body is read with a cap (``download.MAX_JSON_BYTES`` for answers,
``download.MAX_ERROR_BODY_BYTES`` for errors); a redirect is refused by name; a TLS
certificate failure is final and says so; every string taken from a failure is cleaned
(``errors.clean``) and redacted with the client's secrets.  The queue client
(``queue_client``) builds its operations on this; nothing here knows fal's URLs.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from . import download, netbudget, retry
from . import errors as err
from .errors import CancelledError, OutpaintTimeoutError, error_from_response
from .i18n import _
from .retry import ErrorKind, Op, Timeouts

__all__ = ["Caller", "Perform", "host_of", "json_object", "json_value"]

# Each retry is told here (INFO) with its reason; the CLI shows it with -v.  The reason is
# built from status codes and error kinds only, never from server text.
log = logging.getLogger(__name__)

# Performs one attempt itself (e.g. a streamed download) with the timeout it is given;
# returns the response and its (capped) body.
Perform = Callable[[httpx.Timeout], "tuple[httpx.Response, bytes]"]


class Caller:
    """The retrying, budgeted call every operation of the queue client goes through."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        secrets: tuple[str, ...],
        auth_for: Callable[[str], dict[str, str]],
        timeouts: Timeouts,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        rand: Callable[[], float],
        time_scale: float,
    ) -> None:
        self._http = http
        self._secrets = secrets
        self._auth_for = auth_for
        self._timeouts = timeouts
        self._sleep, self._clock, self._rand = sleep, clock, rand
        self._scale = time_scale

    def check(self, cancel: threading.Event | None, deadline: float | None) -> None:
        if cancel is not None and cancel.is_set():
            raise CancelledError(_("Cancelled"))
        if deadline is not None and self._clock() >= deadline:
            raise OutpaintTimeoutError(_("No result from fal within the time limit"))

    def pause(self, seconds: float, cancel: threading.Event | None, deadline: float | None) -> None:
        """Sleep in short steps so a cancel or the deadline is noticed within one step."""
        end = self._clock() + seconds
        while True:
            self.check(cancel, deadline)
            now = self._clock()
            step = min(end - now, retry.CANCEL_CHECK_INTERVAL_S)
            if deadline is not None:
                step = min(step, deadline - now)
            if step <= 0:
                if now >= end:
                    return
                continue
            self._sleep(step)

    def call(
        self,
        op: Op,
        method: str,
        url: str,
        *,
        deadline: float | None = None,
        cancel: threading.Event | None = None,
        ok: tuple[int, ...] = (),
        request_id: str | None = None,
        perform: Perform | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> tuple[httpx.Response, bytes]:
        """Send until success or ``retry.decide`` gives up; then raise the mapped error.

        Each attempt runs under ``netbudget.limit``: its end is the op's total budget or the
        deadline, whichever comes first, and ``cancel`` interrupts it (for a submit only
        after ``SUBMIT_CANCEL_GRACE_S``, so that an id already on its way is not lost).
        """
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            self.check(cancel, deadline)
            timeout = self.timeout(op, deadline)
            response: httpx.Response | None = None
            body = b""
            kind: ErrorKind | None = None
            failure = ""  # only text: the httpx exception holds the request and its key header
            try:
                with (
                    err.about_request(request_id),
                    netbudget.limit(self.real_end(op, deadline), _interrupt(op, cancel)),
                ):
                    if perform is not None:
                        response, body = perform(timeout)
                    else:
                        response, body = self._exchange(
                            op, method, url, headers, timeout, ok, **kwargs
                        )
            except netbudget.Interrupted:
                if op is Op.SUBMIT:
                    raise err.SubmitUnknownError(
                        _(
                            "Cancelled while the submit was on its way: fal may have accepted "
                            "it (no request id came back), so it was not sent again"
                        )
                    ) from None
                raise CancelledError(_("Cancelled")) from None
            except (httpx.TransportError, netbudget.Expired) as exc:
                kind, failure = _error_kind(exc), self._transport_text(url, exc)
                if deadline is not None and self._clock() >= deadline:
                    raise _deadline_error(op) from None
            if failure and kind is None:
                raise err.NetworkError(failure)
            code = None if response is None else response.status_code
            if response is not None and code is not None and 300 <= code < 400:
                raise err.ApiError(
                    f"{host_of(url)} answered with a redirect (HTTP {code}); redirect refused",
                    status=code,
                    request_id=request_id,
                )
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
                ingress_failure=b"nginx" in body,
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
                self.pause(decision.delay_s, cancel, deadline)
                continue
            if decision.outcome_unknown:
                raise err.SubmitUnknownError(
                    _(
                        "The submit reached {host} but its answer was lost ({reason}); fal may "
                        "be running it, so it was not sent again"
                    ).format(host=host_of(url), reason=decision.reason)
                )
            if kind is not None or code is None:
                raise err.NetworkError(failure)
            raise error_from_response(
                code, seen, body, request_id=request_id, secrets=self._secrets
            )

    def _exchange(
        self,
        op: Op,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        timeout: httpx.Timeout,
        ok: tuple[int, ...],
        **kwargs: Any,
    ) -> tuple[httpx.Response, bytes]:
        """One request; its body read with a cap (a JSON answer, or an error to describe)."""
        sent = {"Accept": "application/json", **self._auth_for(url), **(headers or {})}
        with self._http.stream(method, url, headers=sent, timeout=timeout, **kwargs) as response:
            code = response.status_code
            if code >= 400 and code not in ok or 300 <= code < 400:
                return response, download.read_capped(
                    response, download.MAX_ERROR_BODY_BYTES, truncate=True
                )
            error = err.SubmitUnknownError if op is Op.SUBMIT else err.ApiError
            return response, download.read_capped(
                response,
                download.MAX_JSON_BYTES,
                what=f"fal's answer to the {op.value}",
                error=error,
            )

    def timeout(self, op: Op, deadline: float | None) -> httpx.Timeout:
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
                raise _deadline_error(op)
            values = [min(v, left) for v in values]
        return httpx.Timeout(values[0], read=values[1], write=values[2], pool=values[3])

    def real_end(self, op: Op | None, deadline: float | None) -> float | None:
        """When one attempt must be over, as a ``time.monotonic()`` value for the sockets
        (``deadline`` is on ``self._clock``, which tests may fake)."""
        t = self._timeouts
        left: float | None = None
        if op is not None:
            left = {Op.UPLOAD: t.upload_total, Op.DOWNLOAD: t.download_total}.get(op, t.total)
        if deadline is not None:
            to_deadline = deadline - self._clock()
            left = to_deadline if left is None else min(left, to_deadline)
        return None if left is None else time.monotonic() + left

    def _transport_text(self, url: str, exc: BaseException) -> str:
        reason = err.clean(str(exc), self._secrets, limit=120) or type(exc).__name__
        if _certificate_failure(exc):
            return _(
                "The TLS certificate of {host} could not be verified ({reason}); not retried: "
                "check the server address, or the certificate authorities this computer trusts"
            ).format(host=host_of(url), reason=reason)
        if _error_kind(exc) in retry.NOT_SENT_ERRORS:
            return _("Could not reach {host}: {reason}").format(host=host_of(url), reason=reason)
        return _("The connection to {host} failed: {reason}").format(
            host=host_of(url), reason=reason
        )


# How far a request got when its budget ran out (netbudget.Expired.phase).
_EXPIRED_KIND = {
    "connect": ErrorKind.CONNECT_TIMEOUT,
    "write": ErrorKind.WRITE,
    "read": ErrorKind.READ_TIMEOUT,
}


def _interrupt(op: Op, cancel: threading.Event | None) -> Callable[[], bool] | None:
    """What tells ``netbudget`` to abandon an attempt of ``op``."""
    if cancel is None:
        return None
    if op is not Op.SUBMIT:
        return cancel.is_set
    noticed: list[float] = []

    def after_grace() -> bool:
        if not cancel.is_set():
            return False
        if not noticed:
            noticed.append(time.monotonic())
        return time.monotonic() - noticed[0] >= retry.SUBMIT_CANCEL_GRACE_S

    return after_grace


def _deadline_error(op: Op) -> OutpaintTimeoutError:
    if op is Op.SUBMIT:
        return OutpaintTimeoutError(
            _(
                "No answer to the submit within the time limit; fal may have accepted it, so "
                "it was not sent again"
            )
        )
    return OutpaintTimeoutError(_("No result from fal within the time limit"))


def _certificate_failure(exc: BaseException) -> bool:
    """A TLS certificate that does not verify: no retry can change that."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


def _error_kind(exc: BaseException) -> ErrorKind | None:
    """How far a failed request got; None for failures that no retry can fix."""
    if _certificate_failure(exc):
        return None
    if isinstance(exc, netbudget.Expired):
        return _EXPIRED_KIND.get(exc.phase, ErrorKind.READ_TIMEOUT)
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


def host_of(url: str) -> str:
    """host[:port] of a URL for a message: never its user name or password (a hostile URL
    could carry the key there), never anything unparsable."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "the server"
    if not host:
        return "the server"
    shown = f"[{host}]" if ":" in host else host
    return err.clean(shown if port is None else f"{shown}:{port}", limit=80)


def json_value(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # "[[[[…": too deep to be fal's
        return None


def json_object(body: bytes) -> dict[str, Any]:
    data = json_value(body)
    return data if isinstance(data, dict) else {}
