"""How the reference travels: its encoding, its transport and the request body.

Encoding rule (``choose_encoding``):

* **PNG** when the reference has any transparency (JPEG cannot carry alpha, and flattening
  would invent a background the model then continues), or when the image is small
  (≤ ``SMALL_EXACT_PIXELS``): there PNG costs at most a few hundred kilobytes and loses
  nothing.
* **JPEG quality 92, 4:4:4 chroma** for every other (opaque, photo-sized) reference.  The
  reference only *guides* the model — the user's original pixels never come back from fal,
  they are kept locally and composited over the result — so visually lossless is enough,
  and a q92 4:4:4 JPEG of a photograph is 4–8× smaller than its PNG: the upload, usually
  the slowest local step, shrinks by the same factor.  4:4:4 keeps colour edges crisp at
  the seam, where 4:2:0 would smear chroma across two pixels.

Transport rule (``choose_transport``): up to ``INLINE_MAX_BYTES`` encoded bytes travel
inline as a ``data:`` URI in the submit body (one round trip, base64 adds a third); bigger
payloads go to fal storage (initiate → PUT → ``file_url``).  fal's maintainers report data
URIs failing from 3–10 MB, so the cut-off stays far below that.

Encoders are injected (Pillow in the CLI, GdkPixbuf in GIMP, ``pngcodec`` as the fallback)
so this module never touches a codec.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import InputError
from .geometry import Expansion

__all__ = [
    "INLINE_MAX_BYTES",
    "JPEG_QUALITY",
    "SMALL_EXACT_PIXELS",
    "Encoder",
    "Encoding",
    "RequestOptions",
    "build_request",
    "choose_encoding",
    "choose_transport",
    "data_uri",
    "has_alpha",
    "mime_type",
]

JPEG_QUALITY = 92
PNG_LEVEL = 6
SMALL_EXACT_PIXELS = 256 * 256
INLINE_MAX_BYTES = 1_500_000
MODES = ("high", "fast")
DEFAULT_MODE = "high"
OUTPUT_FORMATS = ("png", "jpeg")
DEFAULT_OUTPUT_FORMAT = "png"


@dataclass(frozen=True)
class Encoding:
    format: str  # "png" | "jpeg"
    quality: int = JPEG_QUALITY  # JPEG only
    subsampling: str = "4:4:4"  # JPEG only
    png_level: int = PNG_LEVEL  # PNG only

    @property
    def mime(self) -> str:
        return mime_type(self.format)

    @property
    def extension(self) -> str:
        return "jpg" if self.format == "jpeg" else "png"


Encoder = Callable[[bytes, int, int, Encoding], bytes]
"""(rgba_u8, width, height, encoding) → encoded bytes."""


@dataclass(frozen=True)
class RequestOptions:
    mode: str = DEFAULT_MODE
    output_format: str = DEFAULT_OUTPUT_FORMAT
    enable_safety_checker: bool = True
    sync_mode: bool = False
    auto_crop: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"Unknown mode {self.mode!r}: use high or fast")
        if self.output_format not in OUTPUT_FORMATS:
            raise InputError(f"Unknown output format {self.output_format!r}: use png or jpeg")


def mime_type(fmt: str) -> str:
    return {"png": "image/png", "jpeg": "image/jpeg"}[fmt]


def has_alpha(rgba: bytes) -> bool:
    """True when any pixel is not fully opaque."""
    alpha = rgba[3::4]
    return alpha.count(255) != len(alpha)


def choose_encoding(has_alpha: bool, width: int, height: int) -> Encoding:
    if has_alpha or width * height <= SMALL_EXACT_PIXELS:
        return Encoding("png")
    return Encoding("jpeg")


def choose_transport(n_bytes: int) -> str:
    return "inline" if n_bytes <= INLINE_MAX_BYTES else "upload"


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def build_request(image_url: str, expansion: Expansion, options: RequestOptions) -> dict[str, Any]:
    """The submit body; every field explicit so the request means the same on any server.

    All but ``mode``: it is missing from the endpoint's first published schema (only fal's
    newer listing has it), so it is sent only when it is not the default ``high`` — a
    schema without it can then never turn every job into a 422.
    """
    if expansion.is_zero:
        raise InputError("Nothing to expand: at least one side must be larger than 0")
    body: dict[str, Any] = {"image_url": image_url, **expansion.as_request()}
    if options.mode != DEFAULT_MODE:
        body["mode"] = options.mode
    body.update(
        output_format=options.output_format,
        enable_safety_checker=options.enable_safety_checker,
        sync_mode=options.sync_mode,
        auto_crop=options.auto_crop,
    )
    return body
