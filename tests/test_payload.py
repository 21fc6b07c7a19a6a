import base64
import io

import pytest
from flux_outpaint.errors import InputError
from flux_outpaint.geometry import Expansion
from flux_outpaint.payload import (
    INLINE_MAX_BYTES,
    RequestOptions,
    build_request,
    choose_encoding,
    choose_transport,
    data_uri,
    has_alpha,
)
from flux_outpaint_cli.imageio import encode
from PIL import Image


def test_has_alpha():
    assert not has_alpha(b"\x01\x02\x03\xff" * 10)
    assert has_alpha(b"\x01\x02\x03\xff" * 9 + b"\x00\x00\x00\xfe")


@pytest.mark.parametrize(
    ("alpha", "size", "fmt"),
    [
        (True, (4000, 3000), "png"),
        (False, (4000, 3000), "jpeg"),
        (True, (256, 256), "png"),
        (False, (256, 256), "png"),
        (False, (257, 256), "jpeg"),
    ],
)
def test_choose_encoding(alpha, size, fmt):
    enc = choose_encoding(alpha, *size)
    assert enc.format == fmt
    if fmt == "jpeg":
        assert enc.quality >= 92 and enc.subsampling == "4:4:4"


def test_transport_threshold():
    assert choose_transport(INLINE_MAX_BYTES) == "inline"
    assert choose_transport(INLINE_MAX_BYTES + 1) == "upload"
    # base64 of the largest inline payload stays far below the sizes fal rejects (3–10 MB)
    assert len(data_uri(b"\x00" * INLINE_MAX_BYTES, "image/png")) < 2_100_000


def test_data_uri():
    uri = data_uri(b"abc", "image/png")
    assert uri == "data:image/png;base64," + base64.b64encode(b"abc").decode()


def test_build_request_has_every_field():
    body = build_request(
        "data:x", Expansion(1, 2, 3, 4), RequestOptions("fast", "jpeg", False, True, False)
    )
    assert body == {
        "image_url": "data:x",
        "expand_left": 1,
        "expand_right": 2,
        "expand_top": 3,
        "expand_bottom": 4,
        "mode": "fast",
        "output_format": "jpeg",
        "enable_safety_checker": False,
        "sync_mode": True,
        "auto_crop": False,
    }
    with pytest.raises(InputError):
        build_request("data:x", Expansion(), RequestOptions())


def test_mode_is_sent_only_when_it_is_not_the_default():
    body = build_request("data:x", Expansion(left=8), RequestOptions())
    assert "mode" not in body  # a schema without the field never sees it
    assert body["output_format"] == "png" and body["expand_left"] == 8
    assert build_request("data:x", Expansion(left=8), RequestOptions("fast"))["mode"] == "fast"


@pytest.mark.parametrize("kwargs", [{"mode": "slow"}, {"output_format": "webp"}])
def test_options_validated(kwargs):
    with pytest.raises(InputError):
        RequestOptions(**kwargs)


def test_pillow_encoder_jpeg_444_and_png_exact():
    w, h = 320, 240
    rgba = bytes((x * 7 + y) % 256 for y in range(h) for x in range(w) for _ in range(4))
    jpeg = encode(rgba, w, h, choose_encoding(False, w, h))
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG" and image.size == (w, h)
    assert image.layer[0][1:3] == image.layer[1][1:3]  # 4:4:4: chroma not subsampled
    png = encode(rgba, w, h, choose_encoding(True, w, h))
    assert Image.open(io.BytesIO(png)).convert("RGBA").tobytes() == rgba
