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

A key can come back in disguise: upper-cased, reversed, spaced out, base64- or hex-encoded,
or cut in two across log lines.  ``redact`` also compares text with the key in those forms,
letters and digits only and case folded, and removes every run of at least
``KEY_FRAGMENT_CHARS`` of them that belongs to a long key (a whole short one), so each half
of a key split over two lines is gone from both.

A server's ``x-fal-request-id`` header never becomes an error's ``request_id``: the id is
the one the submit answer carried (validated before it was stored); a header that names
another is reported only as "the server said …", cleaned and capped (``error_from_response``).

Server text is hostile until cleaned: ``clean`` (used by every message, log line and journal
note built from it) drops terminal escape sequences (CSI, OSC, …), control characters and
bidirectional overrides, redacts the key and folds everything onto one capped line, so a
server can neither retitle a terminal, nor forge a second output line, nor show the key.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from .i18n import _
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
    "request_suffix",
    "redact",
    "secrets_of",
    "server_said_id",
    "strip_controls",
    "user_message",
]

_MAX_MESSAGE = 300
MAX_MESSAGE = _MAX_MESSAGE  # the longest line a person is shown (one_line cuts the rest)
# A key this long (letters and digits) is redacted by its fragments: any run of
# KEY_FRAGMENT_CHARS of them in any of its disguises.  Shorter keys only as a whole.
KEY_FRAGMENT_CHARS = 12
_LONG_KEY_CHARS = 16
# How much of a server's own request id header a message may quote.
MAX_SERVER_ID_CHARS = 40


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
    return s or _("Unknown error")


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
    """Remove API keys from text that came from elsewhere (server bodies, exceptions):
    echoed ``Key …`` tokens, each secret as it is, then each in disguise (module docstring)."""
    out = _KEYISH.sub(r"\1***", text)
    # Longest first: a secret that contains another is removed whole.
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and len(secret) >= 4:
            out = out.replace(secret, "***")
    forms = _disguises(tuple(s for s in secrets if s and len(s) >= 4))
    return _redact_disguised(out, forms) if forms else out


def _fold(ch: str) -> str:
    low = ch.lower()
    return low if len(low) == 1 else ch  # one character for one: positions stay mapped


def _squeezed(text: str) -> str:
    return "".join(_fold(ch) for ch in text if ch.isalnum())


@functools.lru_cache(maxsize=32)
def _disguises(secrets: tuple[str, ...]) -> dict[int, frozenset[str]]:
    """Length → what to look for in squeezed text (letters and digits, case folded)."""
    found: dict[int, set[str]] = {}
    for secret in secrets:
        raw = secret.encode("utf-8")
        forms = [_squeezed(secret), _squeezed(secret)[::-1], raw.hex()]
        for shift in range(3):  # base64 at each alignment; the groups it shares with
            encoded = base64.b64encode(bytes(shift) + raw).decode("ascii")  # neighbours cut
            forms.append(_squeezed(encoded[4 if shift else 0 : -4]))
        for form in forms:
            if len(form) >= _LONG_KEY_CHARS:
                found.setdefault(KEY_FRAGMENT_CHARS, set()).update(
                    form[i : i + KEY_FRAGMENT_CHARS]
                    for i in range(len(form) - KEY_FRAGMENT_CHARS + 1)
                )
            elif len(form) >= 8 or (len(form) >= 4 and form in forms[:2]):
                found.setdefault(len(form), set()).add(form)  # a short key only as a whole
    return {n: frozenset(v) for n, v in found.items()}


def _redact_disguised(text: str, forms: dict[int, frozenset[str]]) -> str:
    where = [i for i, ch in enumerate(text) if ch.isalnum()]
    squeezed = "".join(_fold(text[i]) for i in where)
    spans: list[tuple[int, int]] = []
    for size, wanted in forms.items():
        for j in range(len(squeezed) - size + 1):
            if squeezed[j : j + size] in wanted:
                spans.append((where[j], where[j + size - 1] + 1))
    if not spans:
        return text
    spans.sort()
    merged = [spans[0]]
    for start, end in spans[1:]:
        if start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    parts, done = [], 0
    for start, end in merged:
        parts += [text[done:start], "***"]
        done = end
    parts.append(text[done:])
    return "".join(parts)


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
            text += request_suffix(exc.request_id)
    elif isinstance(exc, KeyboardInterrupt):
        text = _("Cancelled")
    elif isinstance(exc, MemoryError):
        text = _("Out of memory: try a smaller expansion")
    elif isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        text = f"{exc.strerror}{where}"
    else:
        detail = str(exc)
        text = _("Unexpected error ({kind})").format(kind=type(exc).__name__)
        if detail:
            text = _("{message}: {detail}").format(message=text, detail=detail)
    return one_line(redact(strip_controls(text), secrets))


def request_suffix(request_id: str) -> str:
    """What ``user_message`` adds to name a request: " (request …)"."""
    return _(" (request {request_id})").format(request_id=request_id)


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
    queue timeout.  ``error_type`` / ``x-fal-error-type`` are kept.  The error's request id
    is ``request_id`` (ours); an ``x-fal-request-id`` header that names another request, or
    one when we know none, is only quoted as what the server said.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    rid = request_id
    said = server_said_id(lowered.get("x-fal-request-id"), request_id, secrets)
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
    suffix = (_(": {detail}").format(detail=text) if text else "") + said
    common: dict[str, Any] = {"status": status, "error_type": error_type, "request_id": rid}

    if error_type == "content_policy_violation" or any(
        d.get("type") == "content_policy_violation" for d in items
    ):
        common["error_type"] = "content_policy_violation"
        return ContentPolicyError(
            _("The image was rejected by fal's safety filter") + suffix, fields=fields, **common
        )
    if status == 422:
        return ValidationError(
            _("fal rejected the input") + (suffix or " (HTTP 422)"), fields=fields, **common
        )
    if status == 401:
        return AuthError(
            _(
                "fal rejected the API key (HTTP 401): check FAL_KEY or run "
                "`python3 install.py --set-key`"
            ),
            **common,
        )
    if status == 403:
        return AuthError(_("fal refused the request (HTTP 403)") + suffix, **common)
    if status in (404, 410):
        return ResultUnavailableError(
            _("fal no longer knows this request or its result (HTTP {status})").format(
                status=status
            ),
            **common,
        )
    if status in THROTTLE_STATUSES:
        return RateLimitError(
            _("fal is busy (HTTP {status}); try again shortly").format(status=status), **common
        )
    if status == 499:
        return CancelledError(_("Cancelled on fal (HTTP 499)"), request_id=rid)
    if status == 504 and lowered.get("x-fal-request-timeout-type", "").lower() == "user":
        return OutpaintTimeoutError(
            _("Timed out waiting in fal's queue (HTTP 504)"), request_id=rid
        )
    if status >= 500:
        kind = f", {error_type}" if error_type else ""
        what = _("fal could not run the job (HTTP {status}{kind})")
        return ServerError(what.format(status=status, kind=kind) + suffix, **common)
    return ApiError(_("fal answered HTTP {status}").format(status=status) + suffix, **common)


def server_said_id(header: str | None, request_id: str | None, secrets: tuple[str, ...]) -> str:
    """ "; the server said request …" when a server's request id header is worth quoting
    (present, and not our own id), cleaned and capped; "" otherwise."""
    if not header or header == request_id:
        return ""
    shown = clean(header, secrets, limit=MAX_SERVER_ID_CHARS)
    return _("; the server said request “{request_id}”").format(request_id=shown) if shown else ""


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
