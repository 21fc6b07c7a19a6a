"""Server text made safe: escapes, controls and the key never reach a screen or a file."""

from __future__ import annotations

import pytest
from flux_outpaint import errors
from flux_outpaint.errors import clean, one_line, secrets_of, strip_controls, user_message

KEY = "key-id-1234:s3cret-abcdef"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text", "plain text"),
        ("title\x1b]0;pwned\x07 set", "title set"),  # OSC with BEL
        ("title\x1b]2;pwned\x1b\\ set", "title set"),  # OSC with ST
        ("\x1b[2J\x1b[1;1Hcleared \x1b[31mred\x1b[0m", "cleared red"),  # CSI
        ("csi\x9b31m c1", "csi c1"),  # the one-byte C1 CSI
        ("bell\x07 nul\x00 del\x7f", "bell nul del"),
        ("first\nin.png -> /tmp/elsewhere.png", "first in.png -> /tmp/elsewhere.png"),
        ("over\rwrite", "over write"),  # a CR could overwrite what is shown
        ("evil\u202egnp.exe", "evilgnp.exe"),  # right-to-left override
        ("\x1bcreset", "reset"),
    ],
)
def test_clean_drops_escapes_and_controls_and_folds_lines(text, shown):
    assert clean(text) == shown
    assert one_line(text) == shown


def test_clean_redacts_the_key_and_its_halves_even_when_escapes_split_it():
    text = f"auth Key {KEY} id key-id-1234; secret s3cret-\x1b[0mabcdef"
    shown = clean(text, secrets_of(KEY))
    assert "s3cret" not in shown and "key-id-1234" not in shown
    assert shown == "auth Key *** id ***; secret ***"


def test_clean_caps_the_length():
    assert len(clean("x" * 10_000)) == 300
    assert clean("x" * 10_000, limit=50).endswith("…")


def test_strip_controls_keeps_line_feeds_for_multi_line_logs():
    assert strip_controls("Traceback\n  File \x1b[31m'x'\r\n") == "Traceback\n  File 'x'\n\n"


def test_every_message_of_ours_is_clean_and_user_message_redacts():
    exc = errors.ServerError(f"boom\x1b]0;t\x07\nforged line {KEY}", request_id="r-1")
    message = user_message(exc, secrets_of(KEY))
    assert message == "boom forged line *** (request r-1)"
    assert user_message(ValueError("bad\x1b[2Jvalue")) == "Unexpected error (ValueError): badvalue"


def test_a_cancel_names_its_request():
    assert user_message(errors.CancelledError("Cancelled", request_id="r-9")) == (
        "Cancelled (request r-9)"
    )
    assert user_message(errors.CancelledError("Cancelled")) == "Cancelled"


def test_error_from_response_cleans_server_text():
    split = KEY.replace("s3cret", "s3c\\u001b[0mret")  # escapes inside the key itself
    body = f'{{"detail": "fail\\u001b]0;x\\u0007\\nKey {split} {KEY}"}}'.encode()
    exc = errors.error_from_response(500, {}, body, secrets=secrets_of(KEY))
    assert "\x1b" not in str(exc) and "\n" not in str(exc) and KEY not in str(exc)
    assert "s3cret" not in str(exc)
    nested = b"[" * 100_000 + b"]" * 100_000  # too deep for json: still one clean line
    assert "HTTP 500" in str(errors.error_from_response(500, {}, nested))


def test_secrets_of():
    assert secrets_of(KEY) == (KEY, "key-id-1234", "s3cret-abcdef")
    assert secrets_of("plainkey") == ("plainkey",)
    assert secrets_of("a:b") == ("a:b",)  # halves too short to redact on their own
    assert secrets_of("  ") == ()
