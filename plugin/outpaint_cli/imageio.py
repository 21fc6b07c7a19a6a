"""The Pillow encoder the CLI injects into the core (``outpaint.payload.Encoder``)."""

from __future__ import annotations

import io

from outpaint.payload import Encoding
from PIL import Image

_SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}


def encode(rgba: bytes, width: int, height: int, encoding: Encoding) -> bytes:
    image = Image.frombytes("RGBA", (width, height), rgba)
    out = io.BytesIO()
    if encoding.format == "jpeg":
        image.convert("RGB").save(
            out, "JPEG", quality=encoding.quality, subsampling=_SUBSAMPLING[encoding.subsampling]
        )
    else:
        if image.getextrema()[3][0] == 255:  # opaque: a quarter fewer bytes without alpha
            image = image.convert("RGB")
        image.save(out, "PNG", compress_level=encoding.png_level)
    return out.getvalue()
