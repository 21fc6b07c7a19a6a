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


# -- the key in disguise -------------------------------------------------------------------

FAL_KEY = "7f3a1c2e-1111-4a4a-9b9b-0123456789ab:0a1b2c3d4e5f60718293a4b5c6d7e8f9"
SECRET = FAL_KEY.split(":")[1]


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "disguise",
    [
        FAL_KEY.upper(),
        FAL_KEY[::-1],
        " ".join(FAL_KEY),
        "-".join(SECRET),
        _b64(FAL_KEY),
        _b64(f"Key {FAL_KEY}"),
        _b64(f"xy{FAL_KEY}"),  # another alignment
        FAL_KEY.encode().hex(),
        FAL_KEY.replace(":", "%3A"),
    ],
)
def test_the_key_in_disguise_is_redacted(disguise):
    shown = clean(f"runner said {disguise} and stopped", secrets_of(FAL_KEY))
    assert shown.startswith("runner said ") and shown.endswith(" and stopped")
    squeezed = "".join(ch for ch in shown.lower() if ch.isalnum())
    for fragment in (SECRET[:12], SECRET[-12:], SECRET[10:22]):
        assert fragment not in squeezed and fragment[::-1] not in squeezed


def test_a_key_split_across_two_lines_is_redacted_in_both():
    cut = FAL_KEY.index(":") + 17  # in the middle of the secret half
    first, second = f"auth {FAL_KEY[:cut]}", f"{FAL_KEY[cut:]} ok"
    secrets = secrets_of(FAL_KEY)
    shown = [clean(first, secrets), clean(second, secrets)]
    assert shown[0] in ("auth ***", "auth ***:***") and shown[1] == "*** ok"


def test_innocent_text_and_other_ids_are_left_alone():
    text = "request 0a7c2b3e-5555-4d4d-8e8e-abcdefabcdef finished in 12.5 s at 1024x768"
    assert clean(text, secrets_of(FAL_KEY)) == text
    assert clean("the FAL_KEY variable is set", secrets_of(FAL_KEY)).endswith("is set")


def test_a_server_request_id_header_is_only_quoted():
    forged = "$(touch /tmp/owned)" + "x" * 20_000
    exc = errors.error_from_response(
        500, {"x-fal-request-id": forged}, b'{"detail": "boom"}', request_id=None
    )
    assert exc.request_id is None
    message = user_message(exc)
    assert "the server said request “$(touch /tmp/owned)" in message
    assert len(message) < 200 and "x" * 41 not in message
    # our own id wins; a header naming another request is only what the server said
    exc = errors.error_from_response(
        500, {"x-fal-request-id": "other-999"}, b"{}", request_id="r-1"
    )
    assert exc.request_id == "r-1" and "the server said request “other-999”" in str(exc)
    same = errors.error_from_response(500, {"x-fal-request-id": "r-1"}, b"{}", request_id="r-1")
    assert "server said" not in str(same)
