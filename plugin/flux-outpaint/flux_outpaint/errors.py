"""The one exception tree of flux-outpaint, and the one place it becomes user text.

    OutpaintError                     every failure the product expects
    ├── ConfigError                   no key, bad base URL, unreadable settings
    ├── InputError                    nothing to expand, too large, bad image, bad option
    ├── NetworkError                  could not talk to the server (after retries)
    │   └── SubmitUnknownError        submit sent, reply lost: it may have been accepted
    ├── ApiError                      the server answered with an error
    │   ├── AuthError                 401 / 403: bad key, locked or empty account
    │   ├── ValidationError           422 with fal's ``detail`` list
    │   │   └── ContentPolicyError    422 ``content_policy_violation`` (safety checker)
    │   ├── RateLimitError            429 / 408 / 409 still failing after retries
    │   ├── ServerError               5xx from fal or the model runner
    │   └── ResultUnavailableError    404 / 410: unknown or expired request id
    ├── ResultError                   the result is unusable (bad URL, too big, wrong type/size,
    │                                 truncated, a decompression bomb)
    ├── StorageError                  the journal or the result cache cannot be written
    ├── OutpaintTimeoutError          our own deadline passed (also a builtin TimeoutError)
    │   └── FinishedLateError         … after fal had finished it: its result is there
    └── CancelledError                the user cancelled (499 included)

Every error carries ``request_id`` when one exists, so a paid result can always be
recovered from the journal: code that runs after a submit runs inside ``about_request(id)``,
the one place an error learns its request.  Messages never contain the API key: ``redact``
is applied to every message built from server text.  ``user_message`` turns any exception,
ours or not, into exactly one non-empty line; the CLI, the GIMP plug-in and the tests all go
through it.

Server text is hostile until cleaned: ``clean`` (used by every message, log line and journal
note built from it) drops terminal escape sequences (CSI, OSC, …), control characters and
bidirectional overrides, redacts the key and folds everything onto one capped line, so a
server can neither retitle a terminal, nor forge a second output line, nor show the key.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from .retry import THROTTLE_STATUSES

__all__ = [
    "ApiError",
    "AuthError",
    "CancelledError",
    "ConfigError",
    "ContentPolicyError",
    "InputError",
    "NetworkError",
    "OutpaintError",
    "OutpaintTimeoutError",
    "FinishedLateError",
    "RateLimitError",
    "ResultError",
    "ResultUnavailableError",
    "ServerError",
    "SubmitUnknownError",
    "ValidationError",
    "MAX_MESSAGE",
    "StorageError",
    "about_request",
    "clean",
    "error_from_response",
    "one_line",
    "redact",
    "secrets_of",
    "strip_controls",
    "user_message",
]

_MAX_MESSAGE = 300
MAX_MESSAGE = _MAX_MESSAGE  # the longest line a person is shown (one_line cuts the rest)


class OutpaintError(Exception):
    """Base class: ``str(err)`` is already a one-line message fit for a person."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(one_line(message))
        self.request_id = request_id

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(OutpaintError):
    pass


class InputError(OutpaintError):
    pass


class NetworkError(OutpaintError):
    pass


class SubmitUnknownError(NetworkError):
    """The submit may have reached fal; repeating it could bill twice, so we never do."""


class ApiError(OutpaintError):
    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.status = status
        self.error_type = error_type


class AuthError(ApiError):
    pass


class ValidationError(ApiError):
    def __init__(self, message: str, *, fields: tuple[str, ...] = (), **kw: Any) -> None:
        super().__init__(message, **kw)
        self.fields = fields


class ContentPolicyError(ValidationError):
    pass


class RateLimitError(ApiError):
    pass


class ServerError(ApiError):
    pass


class ResultUnavailableError(ApiError):
    pass


class ResultError(OutpaintError):
    pass


class StorageError(OutpaintError):
    """The journal or the result cache cannot be written (unwritable folder, full disk)."""


class OutpaintTimeoutError(OutpaintError, TimeoutError):
    pass


class FinishedLateError(OutpaintTimeoutError):
    pass


class CancelledError(OutpaintError):
    pass


# An echoed ``Authorization: Key <id:secret>`` header.  Case-sensitive and the token must
# carry a digit or a colon, so prose such as "the FAL_KEY variable" is left alone.
_KEYISH = re.compile(r"\b((?:Authorization:\s*)?Key\s+)(?=[^\s\"',]*[\d:])[^\s\"',]{8,}")


# Terminal escape sequences as a whole (so their parameters vanish with them): CSI
# (ESC [ … final byte), OSC / DCS / SOS / PM / APC strings (ESC ] … BEL or ST), and the
# two-character escapes; then the single C1 introducers a UTF-8 terminal may honour.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x1b[\]PX^_][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
    r"|\x9b[0-?]*[ -/]*[@-~]?"
    r"|[\x90\x9d\x98\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
)
# What remains that a terminal or a text widget would act on: C0 controls but tab and line
# feed, DEL, C1 controls, and the bidirectional overrides and isolates that reorder text.
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# A carriage return (or vertical tab, form feed) would let text overwrite what is shown.
_BREAKS = str.maketrans({"\r": "\n", "\v": "\n", "\f": "\n"})


def strip_controls(text: str) -> str:
    """``text`` without escape sequences and control characters; line breaks become LF."""
    return _CONTROLS.sub("", _ESCAPES.sub("", text)).translate(_BREAKS)


def one_line(text: object) -> str:
    """Drop controls, collapse whitespace, cap the length, never return an empty string."""
    s = " ".join(strip_controls(str(text)).split())
    if len(s) > _MAX_MESSAGE:
        s = s[: _MAX_MESSAGE - 1].rstrip() + "…"
    return s or "Unknown error"


def clean(text: object, secrets: tuple[str, ...] = (), *, limit: int = _MAX_MESSAGE) -> str:
    """Server text made safe to show or store: no escapes or controls, no key, one line.

    Escapes go first, so a key split by an escape sequence is whole again when it is
    redacted.  Returns "" for text that is empty once cleaned.
    """
    s = " ".join(redact(strip_controls(str(text)), secrets).split())
    if len(s) > limit:
        s = s[: limit - 1].rstrip() + "…"
    return s


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove API keys from text that came from elsewhere (server bodies, exceptions)."""
    out = _KEYISH.sub(r"\1***", text)
    # Longest first: a secret that contains another is removed whole.
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and len(secret) >= 4:
            out = out.replace(secret, "***")
    return out


def secrets_of(api_key: str) -> tuple[str, ...]:
    """What to redact for a key: the key, and the id and secret halves of an ``id:secret``
    key (a server may echo either alone)."""
    key = api_key.strip()
    parts = tuple(p for p in key.split(":") if len(p) >= 8) if ":" in key else ()
    return (key, *parts) if key else ()


def user_message(exc: BaseException, secrets: tuple[str, ...] = ()) -> str:
    """The single line shown to a person for any exception."""
    if isinstance(exc, OutpaintError):
        text = str(exc)
        if (
            exc.request_id
            and exc.request_id not in text
            and not isinstance(exc, (InputError, ConfigError))
        ):
            text = f"{text} (request {exc.request_id})"
    elif isinstance(exc, KeyboardInterrupt):
        text = "Cancelled"
    elif isinstance(exc, MemoryError):
        text = "Out of memory: try a smaller expansion"
    elif isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        text = f"{exc.strerror}{where}"
    else:
        detail = str(exc)
        text = f"Unexpected error ({type(exc).__name__}){': ' + detail if detail else ''}"
    return one_line(redact(strip_controls(text), secrets))


@contextlib.contextmanager
def about_request(request_id: str | None) -> Iterator[None]:
    """Any OutpaintError leaving the block names ``request_id`` (unless it names one already)."""
    try:
        yield
    except OutpaintError as exc:
        if exc.request_id is None:
            exc.request_id = request_id
        raise


# -- fal's HTTP error answers ------------------------------------------------------------


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    request_id: str | None = None,
    secrets: tuple[str, ...] = (),
) -> OutpaintError:
    """The exception for an HTTP error answer from fal, following fal's error table.

    422 ``detail`` lists name each field (``expand_left: …``); ``content_policy_violation``
    becomes ContentPolicyError; 499 is a cancel; a 504 marked as a user timeout is our own
    queue timeout.  ``x-fal-request-id`` and ``error_type`` / ``x-fal-error-type`` are kept.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    rid = lowered.get("x-fal-request-id") or request_id
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: "[[[[…"
        data = None
    detail = data.get("detail") if isinstance(data, dict) else None
    error_type = data.get("error_type") if isinstance(data, dict) else None
    if not isinstance(error_type, str):
        error_type = lowered.get("x-fal-error-type")
    items = [d for d in detail if isinstance(d, Mapping)] if isinstance(detail, list) else []
    fields = tuple(f for f in map(_field, items) if f)
    text = clean(_detail_text(detail, items, body if data is None else b""), secrets)
    suffix = f": {text}" if text else ""
    common: dict[str, Any] = {"status": status, "error_type": error_type, "request_id": rid}

    if error_type == "content_policy_violation" or any(
        d.get("type") == "content_policy_violation" for d in items
    ):
        common["error_type"] = "content_policy_violation"
        return ContentPolicyError(
            f"The image was rejected by fal's safety filter{suffix}", fields=fields, **common
        )
    if status == 422:
        return ValidationError(
            f"fal rejected the input{suffix or ' (HTTP 422)'}", fields=fields, **common
        )
    if status == 401:
        return AuthError(
            "fal rejected the API key (HTTP 401): check FAL_KEY or run "
            "`python3 install.py --set-key`",
            **common,
        )
    if status == 403:
        return AuthError(f"fal refused the request (HTTP 403){suffix}", **common)
    if status in (404, 410):
        return ResultUnavailableError(
            f"fal no longer knows this request or its result (HTTP {status})", **common
        )
    if status in THROTTLE_STATUSES:
        return RateLimitError(f"fal is busy (HTTP {status}); try again shortly", **common)
    if status == 499:
        return CancelledError("Cancelled on fal (HTTP 499)", request_id=rid)
    if status == 504 and lowered.get("x-fal-request-timeout-type", "").lower() == "user":
        return OutpaintTimeoutError("Timed out waiting in fal's queue (HTTP 504)", request_id=rid)
    if status >= 500:
        kind = f", {error_type}" if error_type else ""
        return ServerError(f"fal could not run the job (HTTP {status}{kind}){suffix}", **common)
    return ApiError(f"fal answered HTTP {status}{suffix}", **common)


def _field(item: Mapping[str, Any]) -> str:
    loc = item.get("loc")
    return ".".join(str(p) for p in loc if p != "body") if isinstance(loc, list) else ""


def _detail_text(detail: object, items: list[Mapping[str, Any]], raw: bytes) -> str:
    if items:
        shown = []
        for item in items:
            msg = str(item.get("msg") or item.get("type") or "invalid")
            field = _field(item)
            shown.append(f"{field}: {msg}" if field else msg)
        return "; ".join(shown)
    if isinstance(detail, str):
        return detail
    text = raw.decode("utf-8", "replace").strip()
    # An HTML error page from a proxy says nothing a person can use.
    return "" if text.startswith("<") else text[:200]
