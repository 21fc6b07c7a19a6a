"""The local server's stand-in for the outpainting model: a deterministic, non-generative fill.

It does not invent content. It carries the reference's own colours outward and keeps some of
its texture, so results look plausible enough to judge placement, seams and colour continuity:

1. streaks: every new pixel starts as the nearest border pixel of the reference (edge
   extension), so lines and colour bands that touch the border carry straight on;
2. distance blur: a mean pyramid is rebuilt coarse to fine, keeping each level's detail only
   where its scale matches the wanted blur radius (BLUR_PER_PX × distance), so the streaks
   soften the further they run and the corners melt into their neighbours;
3. texture: the high-pass detail of a mirrored copy of the reference, fading with distance,
   so the first pixels past the border are not a smear;
4. grain: low-amplitude Gaussian noise seeded from the input, growing with distance, so wide
   expansions are never flat and the same input always gives the same output.

``prepare`` plays the model's input contract (fal-protocol.md §7.1, §7.3, §8.9): it checks the
input like fal's pydantic model would and loads the reference; failures carry fal's 422
``detail`` list.

The reference region of the output is the reference itself, byte for byte (before any JPEG
encoding). Everything is vectorised numpy: a 4 MP canvas takes a fraction of a second.
"""

from __future__ import annotations

import base64
import binascii
import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

import numpy as np
from PIL import Image

from . import objects

# Blur radius of the edge streaks per pixel of distance from the reference.
BLUR_PER_PX = 0.3
# Detail from the mirrored reference fades to 1/e over this fraction of the reference's short side.
TEXTURE_FALLOFF_FRACTION = 0.12
TEXTURE_FALLOFF_MIN_PX = 12.0
# Texture = reference minus its blur at this many pyramid levels (radius about 2**levels px).
TEXTURE_LEVELS = 3
# How far (px) the streaks keep the border pixel's own detail before the blur removes it.
STREAK_DETAIL_PX = 3.0
# Grain standard deviation (8-bit levels): starts at GRAIN_NEAR at the border, reaches GRAIN_FAR.
GRAIN_NEAR = 0.6
GRAIN_FAR = 2.4
GRAIN_RAMP_PX = 256.0
PNG_COMPRESS_LEVEL = 1  # the output is noisy; higher levels cost seconds and save little
# The drift scenario's colour cast, per channel (R, G, B): out = gain · in + offset, applied
# to the whole canvas after a slight blur, as a model that re-renders everything would.
DRIFT_GAINS = (1.06, 0.96, 0.92)
DRIFT_OFFSETS = (6.0, -4.0, 5.0)
# The varying-drift scenario's cast: gain and offset ramp along the canvas's diagonal, from
# base − ramp at the top-left corner to base + ramp at the bottom-right (the offsets' ramps
# run in different directions per channel), after the same slight blur.
VARYING_GAINS = (1.02, 0.99, 0.97)
VARYING_GAIN_RAMP = (0.04, -0.03, 0.03)
VARYING_OFFSETS = (3.0, -2.0, 2.0)
VARYING_OFFSET_RAMP = (15.0, -12.0, 14.0)
JPEG_QUALITY = 95

MAX_EXPAND = 2048
MIN_CANVAS_SIDE = 64
MAX_CANVAS_PIXELS = 4_194_304
EXPANDS = ("expand_top", "expand_bottom", "expand_left", "expand_right")
ENUMS = {"mode": ("high", "fast"), "output_format": ("jpeg", "png")}
BOOLS = ("auto_crop", "enable_safety_checker", "sync_mode")
DEFAULTS = {
    **dict.fromkeys(EXPANDS, 0),
    "auto_crop": False,
    "mode": "high",
    "enable_safety_checker": True,
    "output_format": "jpeg",
    "sync_mode": False,
}


class InputRejected(Exception):
    """The model refuses the input: 422 with this `detail` list."""

    def __init__(self, detail: list[dict[str, Any]]) -> None:
        super().__init__(detail[0]["msg"] if detail else "invalid input")
        self.detail = detail


@dataclass(frozen=True)
class Prepared:
    params: dict[str, Any]
    reference: Image.Image
    canvas: tuple[int, int]


@dataclass(frozen=True)
class Rendered:
    data: bytes
    width: int
    height: int
    content_type: str


def extend(
    reference: np.ndarray,
    *,
    left: int = 0,
    right: int = 0,
    top: int = 0,
    bottom: int = 0,
    seed: int | None = None,
    textured: bool = False,
) -> np.ndarray:
    """Return the reference (H×W×3 uint8) on a canvas grown by the given margins, filled in.

    ``textured``: the new area carries the reference's own fine detail at full strength all
    the way out, and no extra grain, as a real model continues a photo's texture at the
    scale it was sent (the texture scenario); by default the detail fades with distance."""
    if reference.ndim != 3 or reference.shape[2] != 3 or reference.dtype != np.uint8:
        raise ValueError("reference must be an H×W×3 uint8 array")
    if min(left, right, top, bottom) < 0:
        raise ValueError("margins must be >= 0")
    h, w, _ = reference.shape
    out_h, out_w = h + top + bottom, w + left + right
    if seed is None:
        margins = repr((left, right, top, bottom)).encode()
        seed = zlib.crc32(reference.tobytes(), zlib.crc32(margins))
    ref = reference.astype(np.float32)
    rect = (top, left, h, w)

    streaks = np.pad(ref, ((top, bottom), (left, right), (0, 0)), mode="edge")
    colour = _blur_with_distance(streaks, rect)

    dist = _distance_to_rect((out_h, out_w), 1, rect)
    falloff = max(TEXTURE_FALLOFF_MIN_PX, TEXTURE_FALLOFF_FRACTION * min(h, w))
    # High-pass the reference first and mirror the detail: same result near the border as
    # high-passing a mirrored canvas, at the cost of the reference instead of the canvas.
    detail = ref - _low_pass(ref, TEXTURE_LEVELS)
    pad = ((top, bottom), (left, right), (0, 0))
    mirrored = np.pad(detail, pad, mode="symmetric")
    if not textured:
        mirrored *= np.exp(dist * np.float32(-1.0 / falloff))[..., None]
    colour += mirrored
    del mirrored
    # The streaks still carry the border pixel's own detail for the first few pixels, until
    # the growing blur removes it: take it out there, or the border's texture would show
    # twice and draw a line along the seam.
    repeated = np.pad(detail, pad, mode="edge")
    repeated *= np.exp(dist * np.float32(-1.0 / STREAK_DETAIL_PX))[..., None]
    colour -= repeated
    del repeated, detail

    if not textured:
        rng = np.random.default_rng(seed)
        grain = rng.standard_normal((out_h, out_w, 1), dtype=np.float32)
        ramp = np.minimum(dist / GRAIN_RAMP_PX, 1.0)
        grain *= (GRAIN_NEAR + (GRAIN_FAR - GRAIN_NEAR) * ramp)[..., None]
        colour += grain

    np.clip(colour, 0.0, 255.0, out=colour)
    colour += 0.5  # so that the truncating cast rounds
    out = colour.astype(np.uint8)
    out[top : top + h, left : left + w] = reference  # exact, whatever the float path did
    return out


def _distance_to_rect(
    shape: tuple[int, int], step: int, rect: tuple[int, int, int, int]
) -> np.ndarray:
    """Distance in canvas pixels from each pixel centre of a 1/step-scale grid to the rect."""
    top, left, h, w = rect
    offset = (step - 1) / 2.0  # centre of a step×step block, in canvas pixels
    ys = np.arange(shape[0], dtype=np.float32) * step + offset
    xs = np.arange(shape[1], dtype=np.float32) * step + offset
    dy = np.maximum(np.maximum(top - ys, ys - (top + h - 1)), 0)[:, None]
    dx = np.maximum(np.maximum(left - xs, xs - (left + w - 1)), 0)[None, :]
    distance: np.ndarray = np.sqrt(dy * dy + dx * dx)
    return distance


def _blur_with_distance(img: np.ndarray, rect: tuple[int, int, int, int]) -> np.ndarray:
    """Blur whose radius grows with the distance from `rect` (BLUR_PER_PX × distance).

    Rebuilds the image from its mean pyramid, coarse to fine, keeping a level's own detail only
    where that level's scale is at least the wanted radius: the reference stays sharp, and edge
    streaks soften progressively the further they run from it.
    """
    levels = [img]
    while min(levels[-1].shape[:2]) > 1:
        levels.append(_halve(levels[-1]))
    col = levels[-1]
    for k in range(len(levels) - 2, -1, -1):
        fine = levels[k]
        dist = _distance_to_rect(fine.shape[:2], 2**k, rect)
        keep = np.clip(2.0 - dist * np.float32(BLUR_PER_PX / 2**k), 0.0, 1.0)
        col = _upsample(col, fine.shape[:2])
        fine -= col  # the levels are ours: reuse them as scratch space
        fine *= keep[..., None]
        col += fine
    return col


def _halve(img: np.ndarray) -> np.ndarray:
    """2×2 means; an odd last row/column is repeated."""
    ph, pw = img.shape[0] % 2, img.shape[1] % 2
    if ph or pw:
        img = np.pad(img, ((0, ph), (0, pw), (0, 0)), mode="edge")
    means: np.ndarray = (
        img[0::2, 0::2] + img[1::2, 0::2] + img[0::2, 1::2] + img[1::2, 1::2]
    ) * 0.25
    return means


def _upsample(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear 2× upsampling with pixel centres aligned (weights 3/4, 1/4), cropped to `shape`.

    Slices, not index gathering: this runs on the full canvas and dominates the cost.
    """
    out = img
    for axis in (1, 0):  # columns first, while the array is still half height

        def at(index: slice, axis: int = axis) -> tuple[slice, ...]:
            return (slice(None),) * axis + (index,)

        m = out.shape[axis]
        up_shape = list(out.shape)
        up_shape[axis] = 2 * m
        up = np.empty(up_shape, np.float32)  # C order: every pass below runs on contiguous rows
        even, odd = up[at(slice(0, None, 2))], up[at(slice(1, None, 2))]
        quarter = out * np.float32(0.25)
        np.multiply(out, np.float32(0.75), out=even)
        even[at(slice(1, None))] += quarter[at(slice(None, -1))]
        even[at(slice(0, 1))] += quarter[at(slice(0, 1))]
        np.multiply(out, np.float32(0.75), out=odd)
        odd[at(slice(None, -1))] += quarter[at(slice(1, None))]
        odd[at(slice(-1, None))] += quarter[at(slice(-1, None))]
        out = up[at(slice(0, shape[axis]))]
    return out


def _low_pass(img: np.ndarray, levels: int) -> np.ndarray:
    """A blur of radius about 2**levels px: 2×2 means down, bilinear back up."""
    small, shapes = img, []
    for _ in range(levels):
        if min(small.shape[:2]) < 2:
            break
        shapes.append(small.shape[:2])
        small = _halve(small)
    for shape in reversed(shapes):
        small = _upsample(small, shape)
    return small


def encode(pixels: np.ndarray, output_format: str) -> bytes:
    buf = io.BytesIO()
    img = Image.fromarray(pixels, "RGB")
    if output_format == "png":
        img.save(buf, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    else:
        img.save(buf, "JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def _softened(pixels: np.ndarray) -> np.ndarray:
    img = pixels.astype(np.float32)
    padded = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge")
    img = (padded[:, :-2] + 2 * padded[:, 1:-1] + padded[:, 2:]) / 4.0
    out: np.ndarray = (img[:-2] + 2 * img[1:-1] + img[2:]) / 4.0
    return out


def drifted(pixels: np.ndarray) -> np.ndarray:
    """The canvas as a re-rendering model returns it: a [1 2 1]/4 blur, then a colour cast.

    Everything changes, the region over the original included: that is what colour matching
    has to measure and undo.
    """
    img = _softened(pixels)
    img = img * np.asarray(DRIFT_GAINS, np.float32) + np.asarray(DRIFT_OFFSETS, np.float32)
    out: np.ndarray = (np.clip(img, 0.0, 255.0) + 0.5).astype(np.uint8)
    return out


def _varying_cast(h: int, w: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per channel, the drift-varying scenario's gain and offset over an h×w canvas: t runs
    from -1 (top-left corner) to +1 (bottom-right), -t along the other diagonal for green."""
    ys = np.linspace(-1.0, 1.0, h, dtype=np.float32)[:, None]
    xs = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :]
    gains, offsets = [], []
    for c in range(3):
        t = (xs + ys) / 2.0 if c != 1 else (xs - ys) / 2.0
        gains.append(VARYING_GAINS[c] + VARYING_GAIN_RAMP[c] * t)
        offsets.append(VARYING_OFFSETS[c] + VARYING_OFFSET_RAMP[c] * t)
    return gains, offsets


def drifted_varying(pixels: np.ndarray) -> np.ndarray:
    """Like ``drifted``, but the cast changes across the canvas as a VAE's does: gain and
    offset ramp from one corner to the other (``VARYING_*``), so no single line fits it."""
    img = _softened(pixels)
    gains, offsets = _varying_cast(*img.shape[:2])
    for c in range(3):
        img[..., c] = img[..., c] * gains[c] + offsets[c]
    out: np.ndarray = (np.clip(img, 0.0, 255.0) + 0.5).astype(np.uint8)
    return out


def undrifted(pixels: np.ndarray, varying: bool) -> np.ndarray:
    """The drift (or drift-varying) scenario's own cast taken out of a canvas it returned,
    knowing it exactly: the best any colour correction could do.  The blur and what the
    cast clipped at 0 and 255 stay, as they would for any correction."""
    img = pixels[..., :3].astype(np.float32)
    if varying:
        gains, offsets = _varying_cast(*img.shape[:2])
    else:
        gains = [np.full((1, 1), g, np.float32) for g in DRIFT_GAINS]
        offsets = [np.full((1, 1), o, np.float32) for o in DRIFT_OFFSETS]
    for c in range(3):
        img[..., c] = (img[..., c] - offsets[c]) / gains[c]
    out: np.ndarray = (np.clip(img, 0.0, 255.0) + 0.5).astype(np.uint8)
    return out


def render(
    reference: Image.Image,
    *,
    left: int,
    right: int,
    top: int,
    bottom: int,
    output_format: str,
    distort: bool = False,
    drift: bool = False,
    varying: bool = False,
    textured: bool = False,
    moved: bool = False,
) -> Rendered:
    """Fill and encode; `distort` squeezes the width by a quarter (the wrong-size fault),
    `drift` casts and softens the whole canvas (the drift scenario), `varying` with a cast
    that changes across it (drift-varying), `textured` keeps the reference's texture in the
    whole new area (texture), `moved` paints a bright disc across the seam before a drift
    (moved-object)."""
    pixels = extend(
        np.asarray(reference.convert("RGB")),
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        textured=textured,
    )
    if moved:
        h, w = reference.height, reference.width
        pixels = objects.with_object(pixels, (top, left, h, w), (left, right, top, bottom))
    if varying:
        pixels = drifted_varying(pixels)
    elif drift or moved:
        pixels = drifted(pixels)
    if distort:
        squeezed = Image.fromarray(pixels).resize(
            (max(1, pixels.shape[1] * 3 // 4), pixels.shape[0])
        )
        pixels = np.asarray(squeezed)
    data = encode(pixels, output_format)
    mime = "image/png" if output_format == "png" else "image/jpeg"
    return Rendered(data, pixels.shape[1], pixels.shape[0], mime)


def _err(field_name: str | None, msg: str, kind: str, **extra: object) -> dict[str, Any]:
    loc = ["body"] if field_name is None else ["body", field_name]
    return {"loc": loc, "msg": msg, "type": kind, **extra}


def validate_input(body: object) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Check an input the way fal's pydantic model would; returns (params, detail list).

    Unknown fields are ignored; types are strict (no "5" for 5, no 1 for true).
    """
    if not isinstance(body, dict):
        return {}, [_err(None, "Input should be a valid dictionary", "dict_type")]
    errors = []
    if "image_url" not in body:
        errors.append(_err("image_url", "Field required", "missing"))
    elif not isinstance(body["image_url"], str):
        errors.append(
            _err(
                "image_url",
                "Input should be a valid string",
                "string_type",
                input=body["image_url"],
            )
        )
    for name in EXPANDS:
        value = body.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(_err(name, "Input should be a valid integer", "int_type", input=value))
        elif value < 0:
            errors.append(
                _err(
                    name,
                    "Input should be greater than or equal to 0",
                    "greater_than_equal",
                    input=value,
                    ctx={"ge": 0},
                )
            )
        elif value > MAX_EXPAND:
            errors.append(
                _err(
                    name,
                    f"Input should be less than or equal to {MAX_EXPAND}",
                    "less_than_equal",
                    input=value,
                    ctx={"le": MAX_EXPAND},
                )
            )
    for name, choices in ENUMS.items():
        if name in body and body[name] not in choices:
            expected = " or ".join(f"'{c}'" for c in choices)
            errors.append(
                _err(
                    name,
                    f"Input should be {expected}",
                    "literal_error",
                    input=body[name],
                    ctx={"expected": expected},
                )
            )
    for name in BOOLS:
        if name in body and not isinstance(body[name], bool):
            errors.append(
                _err(name, "Input should be a valid boolean", "bool_type", input=body[name])
            )
    if errors:
        return {}, errors
    params = {
        **DEFAULTS,
        **{k: body[k] for k in DEFAULTS if k in body},
        "image_url": body["image_url"],
    }
    if not any(params[k] for k in EXPANDS):
        errors.append(
            _err(
                None,
                "At least one of expand_top, expand_bottom, expand_left and "
                "expand_right must be greater than 0",
                "value_error",
            )
        )
    return params, errors


def decode_data_uri(url: str) -> bytes:
    head, sep, payload = url[len("data:") :].partition(",")
    if not url.startswith("data:") or not sep:
        raise ValueError("Malformed data URI")
    try:
        if head.endswith(";base64"):
            return base64.b64decode(payload, validate=True)
        return unquote_to_bytes(payload)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"Malformed data URI: {exc}") from exc


def prepare(body: object, fetch: Callable[[str], bytes]) -> Prepared:
    """Validate, load the reference (`fetch` gets non-data URLs) and check the canvas limits.

    Raises InputRejected. The canvas rules are BFL's (fal documents only 0–2048 per side).
    """
    params, errors = validate_input(body)
    if errors:
        raise InputRejected(errors)
    url = params["image_url"]
    try:
        data = decode_data_uri(url) if url.startswith("data:") else fetch(url)
    except ValueError as exc:
        raise InputRejected(
            [_err("image_url", str(exc), "file_download_error", input=url[:200])]
        ) from exc
    try:
        reference = Image.open(io.BytesIO(data))  # reads the header only
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InputRejected(
            [_err("image_url", f"Could not load the image: {exc}", "image_load_error")]
        ) from exc
    w, h = reference.size
    out_w = w + params["expand_left"] + params["expand_right"]
    out_h = h + params["expand_top"] + params["expand_bottom"]
    ctx = {"canvas_width": out_w, "canvas_height": out_h}
    if out_w * out_h > MAX_CANVAS_PIXELS:
        raise InputRejected(
            [
                _err(
                    "image_url",
                    f"The expanded canvas {out_w}x{out_h} exceeds {MAX_CANVAS_PIXELS} pixels",
                    "image_too_large",
                    ctx={**ctx, "max_pixels": MAX_CANVAS_PIXELS},
                )
            ]
        )
    if min(out_w, out_h) < MIN_CANVAS_SIDE:
        raise InputRejected(
            [
                _err(
                    "image_url",
                    f"The expanded canvas {out_w}x{out_h} has a side under "
                    f"{MIN_CANVAS_SIDE} pixels",
                    "image_too_small",
                    ctx={**ctx, "min_side": MIN_CANVAS_SIDE},
                )
            ]
        )
    try:
        reference.load()  # only now, once the size is known to be acceptable
    except (OSError, ValueError) as exc:
        raise InputRejected(
            [_err("image_url", f"Could not load the image: {exc}", "image_load_error")]
        ) from exc
    return Prepared(params, reference.convert("RGB"), (out_w, out_h))
