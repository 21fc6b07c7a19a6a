"""The local server's fill model: exact reference, a real (non-flat) fill, input contract."""

from __future__ import annotations

import base64
import io
import time

import numpy as np
import pytest
from flux_outpaint_fal_local import fill as fal_fill
from PIL import Image


def scene(h: int, w: int) -> np.ndarray:
    """A reference with gradients, a horizontal band and a vertical line (things to continue)."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], -1)
    img = img.astype(np.uint8)
    img[h // 3 : h // 2] = (200, 30, 30)
    img[:, w * 2 // 3 : w * 2 // 3 + max(1, w // 50)] = (250, 250, 250)
    return img


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("h", "w", "left", "right", "top", "bottom"),
    [
        (100, 150, 10, 20, 30, 40),
        (33, 47, 0, 0, 0, 1),
        (64, 64, 2048, 2048, 0, 0),
        (1, 1, 32, 31, 30, 33),
        (511, 257, 5, 0, 129, 0),
    ],
)
def test_reference_region_is_exact_and_canvas_has_the_asked_size(h, w, left, right, top, bottom):
    ref = scene(h, w)
    out = fal_fill.extend(ref, left=left, right=right, top=top, bottom=bottom)
    assert out.shape == (h + top + bottom, w + left + right, 3)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[top : top + h, left : left + w], ref)


def test_png_output_decodes_to_the_exact_reference():
    ref = scene(120, 90)
    rendered = fal_fill.render(
        Image.fromarray(ref), left=7, right=13, top=21, bottom=3, output_format="png"
    )
    assert rendered.content_type == "image/png"
    decoded = np.asarray(Image.open(io.BytesIO(rendered.data)).convert("RGB"))
    assert decoded.shape == (144, 110, 3) == (rendered.height, rendered.width, 3)
    np.testing.assert_array_equal(decoded[21:141, 7:97], ref)


def test_jpeg_output_has_the_size_and_type_asked_and_its_pixels_come_from_the_exact_fill():
    ref = scene(80, 60)
    rendered = fal_fill.render(
        Image.fromarray(ref), left=10, right=0, top=0, bottom=20, output_format="jpeg"
    )
    img = Image.open(io.BytesIO(rendered.data))
    assert (img.format, img.size, rendered.content_type) == ("JPEG", (70, 100), "image/jpeg")
    exact = fal_fill.extend(ref, left=10, right=0, top=0, bottom=20)  # what was encoded
    diff = np.abs(np.asarray(img.convert("RGB"), np.int16) - exact.astype(np.int16))
    assert diff.mean() < 6  # only JPEG loss between the two


def test_fill_is_not_flat_and_varies_pixel_to_pixel():
    ref = scene(128, 128)
    out = fal_fill.extend(ref, left=0, right=300, top=0, bottom=0).astype(np.int16)
    new = out[:, 128:]
    assert new.std(axis=(0, 1)).min() > 10  # colour structure carries on, per channel
    far = new[:, 200:]  # even far out there is grain, not a constant plate
    assert np.abs(np.diff(far, axis=1)).mean() > 0.5


def test_fill_continues_the_colours_at_each_border():
    ref = np.zeros((100, 100, 3), np.uint8)
    ref[:50] = (220, 20, 20)  # red top half
    ref[50:] = (20, 20, 220)  # blue bottom half
    out = fal_fill.extend(ref, left=200, right=0, top=0, bottom=0).astype(int)
    left_top, left_bottom = out[5:45, :150].mean(axis=(0, 1)), out[55:95, :150].mean(axis=(0, 1))
    assert left_top[0] > left_top[2] + 100  # red continues left of the red half
    assert left_bottom[2] > left_bottom[0] + 100  # blue continues left of the blue half


def test_fill_is_deterministic_and_depends_on_the_input():
    ref = scene(90, 70)
    a = fal_fill.extend(ref, left=30, right=30, top=10, bottom=10)
    b = fal_fill.extend(ref.copy(), left=30, right=30, top=10, bottom=10)
    np.testing.assert_array_equal(a, b)
    other = ref.copy()
    other[0, 0] = (9, 99, 199)
    c = fal_fill.extend(other, left=30, right=30, top=10, bottom=10)
    assert not np.array_equal(a[:, :30], c[:, :30])


def test_four_megapixel_canvas_and_its_time():
    ref = scene(1024, 1024)
    t0 = time.perf_counter()
    out = fal_fill.extend(ref, left=512, right=512, top=512, bottom=512)
    elapsed = time.perf_counter() - t0
    assert out.shape == (2048, 2048, 3)
    np.testing.assert_array_equal(out[512:1536, 512:1536], ref)
    print(f"\nfal_fill.extend 1024x1024 -> 2048x2048 (4.19 MP): {elapsed:.3f} s")


def test_extend_rejects_bad_arguments():
    with pytest.raises(ValueError):
        fal_fill.extend(np.zeros((4, 4, 4), np.uint8), left=1)
    with pytest.raises(ValueError):
        fal_fill.extend(np.zeros((4, 4, 3), np.uint8), left=-1)


# ---- the input contract (what becomes a 422) ----


def data_uri(arr: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(arr)).decode()


def no_fetch(url: str) -> bytes:
    raise ValueError(f"not reachable: {url}")


def rejected(body, fetch=no_fetch) -> list[dict]:
    with pytest.raises(fal_fill.InputRejected) as info:
        fal_fill.prepare(body, fetch)
    return info.value.detail


def test_prepare_accepts_a_valid_input_with_defaults_and_ignores_unknown_fields():
    prep = fal_fill.prepare(
        {"image_url": data_uri(scene(80, 70)), "expand_left": 8, "prompt": "ignored", "seed": 3},
        no_fetch,
    )
    assert prep.canvas == (78, 80) and prep.reference.size == (70, 80)
    assert prep.params["mode"] == "high" and prep.params["output_format"] == "jpeg"
    assert prep.params["sync_mode"] is False and "prompt" not in prep.params


@pytest.mark.parametrize(
    ("body", "field", "kind"),
    [
        ({"expand_left": 8}, "image_url", "missing"),
        ({"image_url": 5, "expand_left": 8}, "image_url", "string_type"),
        ({"image_url": "x", "expand_top": "8"}, "expand_top", "int_type"),
        ({"image_url": "x", "expand_top": True}, "expand_top", "int_type"),
        ({"image_url": "x", "expand_bottom": -1}, "expand_bottom", "greater_than_equal"),
        ({"image_url": "x", "expand_right": 2049}, "expand_right", "less_than_equal"),
        ({"image_url": "x", "expand_left": 1, "mode": "turbo"}, "mode", "literal_error"),
        (
            {"image_url": "x", "expand_left": 1, "output_format": "webp"},
            "output_format",
            "literal_error",
        ),
        ({"image_url": "x", "expand_left": 1, "sync_mode": "yes"}, "sync_mode", "bool_type"),
    ],
)
def test_invalid_fields_give_fal_detail_entries_naming_the_field(body, field, kind):
    detail = rejected(body)
    assert {"loc": ["body", field], "type": kind} in [
        {"loc": d["loc"], "type": d["type"]} for d in detail
    ]
    assert all(isinstance(d["msg"], str) and d["msg"] for d in detail)


def test_all_errors_are_reported_together():
    detail = rejected({"expand_top": -5, "mode": "x"})
    assert sorted(d["loc"][-1] for d in detail) == ["expand_top", "image_url", "mode"]


def test_all_zero_expansion_is_rejected():
    detail = rejected({"image_url": data_uri(scene(70, 70))})
    assert detail[0]["type"] == "value_error" and "expand_left" in detail[0]["msg"]


def test_canvas_limits_are_rejected_with_context():
    big = rejected({"image_url": data_uri(np.zeros((2048, 2048, 3), np.uint8)), "expand_left": 1})
    assert big[0]["type"] == "image_too_large"
    assert big[0]["ctx"]["max_pixels"] == 4_194_304 and big[0]["ctx"]["canvas_width"] == 2049
    small = rejected({"image_url": data_uri(scene(10, 10)), "expand_left": 100})
    assert small[0]["type"] == "image_too_small" and small[0]["ctx"]["min_side"] == 64


def test_unreachable_and_undecodable_images():
    assert (
        rejected({"image_url": "https://example.com/a.png", "expand_left": 4})[0]["type"]
        == "file_download_error"
    )
    assert (
        rejected({"image_url": "data:image/png;base64,@@@", "expand_left": 4})[0]["type"]
        == "file_download_error"
    )
    junk = "data:image/png;base64," + base64.b64encode(b"not an image").decode()
    assert rejected({"image_url": junk, "expand_left": 4})[0]["type"] == "image_load_error"


def test_non_data_urls_go_through_fetch():
    seen = []

    def fetch(url: str) -> bytes:
        seen.append(url)
        return png_bytes(scene(70, 70))

    prep = fal_fill.prepare({"image_url": "http://127.0.0.1:9/files/a.png", "expand_top": 2}, fetch)
    assert seen == ["http://127.0.0.1:9/files/a.png"] and prep.canvas == (70, 72)


def test_rgba_and_palette_references_are_filled_from_their_rgb():
    rgba = Image.fromarray(np.dstack([scene(70, 80), np.full((70, 80), 128, np.uint8)]), "RGBA")
    buf = io.BytesIO()
    rgba.save(buf, "PNG")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    prep = fal_fill.prepare({"image_url": uri, "expand_right": 9}, no_fetch)
    out = fal_fill.render(prep.reference, left=0, right=9, top=0, bottom=0, output_format="png")
    decoded = np.asarray(Image.open(io.BytesIO(out.data)))
    assert decoded.shape == (70, 89, 3)
    np.testing.assert_array_equal(decoded[:, :80], np.asarray(rgba.convert("RGB")))
    palette = Image.fromarray(scene(70, 80)).convert("P")
    buf = io.BytesIO()
    palette.save(buf, "PNG")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    prep = fal_fill.prepare({"image_url": uri, "expand_top": 1}, no_fetch)
    assert prep.reference.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(prep.reference), np.asarray(palette.convert("RGB")))


def textured(h: int, w: int, seed: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([100 + 60 * np.sin(x / 9.0), 120 + 50 * np.cos(y / 7.0), 90 + 0 * x], -1)
    return np.clip(base + rng.normal(0, 14, base.shape), 0, 255).astype(np.uint8)


def test_the_first_new_pixels_meet_the_border_without_a_line():
    """The border's own texture must not show twice: no step along the seam."""
    ref = textured(160, 160)
    out = fal_fill.extend(ref, left=0, right=64, top=0, bottom=0).astype(float)
    step = (out[:, 160] - out[:, 159]).reshape(10, 16, 3).mean(axis=1)  # 16-px segments
    inside = (out[:, 159] - out[:, 158]).reshape(10, 16, 3).mean(axis=1)
    # the step into the new area is smaller than the texture's own pixel-to-pixel step
    assert np.abs(step).mean() < 0.5 * np.abs(inside).mean()


def test_drift_casts_and_softens_the_whole_canvas():
    ref = textured(120, 120)
    plain = fal_fill.render(
        Image.fromarray(ref), left=40, right=0, top=0, bottom=0, output_format="png"
    )
    drifted = fal_fill.render(
        Image.fromarray(ref), left=40, right=0, top=0, bottom=0, output_format="png", drift=True
    )
    a = np.asarray(Image.open(io.BytesIO(plain.data))).astype(float)
    b = np.asarray(Image.open(io.BytesIO(drifted.data))).astype(float)
    assert (drifted.width, drifted.height) == (plain.width, plain.height) == (160, 120)
    over = b[:, 40:]  # the region over the original changed too
    expected = ref.astype(float).mean(axis=(0, 1)) * fal_fill.DRIFT_GAINS + fal_fill.DRIFT_OFFSETS
    np.testing.assert_allclose(over.mean(axis=(0, 1)), expected, atol=1.0)
    assert np.abs(np.diff(over, axis=1)).mean() < np.abs(np.diff(a[:, 40:], axis=1)).mean()


def test_the_varying_drift_casts_one_corner_unlike_the_other():
    flat = np.full((200, 300, 3), 120, np.uint8)
    out = fal_fill.drifted_varying(flat).astype(float)
    top_left, bottom_right = out[:10, :10].mean(axis=(0, 1)), out[-10:, -10:].mean(axis=(0, 1))
    # the red offset ramps by about 2 × 15 levels and its gain by 2 × 4 % corner to corner
    assert bottom_right[0] - top_left[0] > 30
    assert abs(bottom_right[1] - top_left[1]) < 3  # green ramps along the other diagonal
    global_fit = out.reshape(-1, 3).mean(axis=0)
    assert np.abs(out - global_fit).max() > 12  # no single cast explains it


@pytest.mark.parametrize("varying", [False, True])
def test_the_scenarios_own_inverse_takes_out_the_cast_but_not_the_blur(varying):
    rng = np.random.default_rng(4)
    mid = np.clip(128 + rng.normal(0, 20, (90, 130, 3)), 40, 215).astype(np.uint8)
    cast = fal_fill.drifted_varying(mid) if varying else fal_fill.drifted(mid)
    back = fal_fill.undrifted(cast, varying).astype(float)
    softened = fal_fill._softened(mid)
    assert np.abs(cast.astype(float) - softened).mean() > 4  # there was a cast
    assert np.abs(back - softened).mean() < 0.6  # rounding only
    assert np.abs(back - mid.astype(float)).mean() > 2  # the blur stays


def test_the_texture_fill_keeps_the_references_detail_far_out():
    rng = np.random.default_rng(2)
    ref = np.clip(120 + rng.normal(0, 8, (120, 160, 3)), 0, 255).astype(np.uint8)
    plain = fal_fill.extend(ref, right=400).astype(float)
    textured = fal_fill.extend(ref, right=400, textured=True).astype(float)

    def detail(a):
        return np.abs(np.diff(a, axis=1)).mean()

    far = slice(160 + 250, 160 + 400)
    assert detail(textured[:, far]) > 0.6 * detail(ref.astype(float))
    assert detail(plain[:, far]) < 0.5 * detail(textured[:, far])
