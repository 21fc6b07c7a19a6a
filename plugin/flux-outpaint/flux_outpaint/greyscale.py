"""Colour pixels made grey by the plug-in itself, so that a grey layer gets the same bytes
every time.

GIMP's pixel-format library (babl) picks the chain of conversions from ``R'G'B'A u8`` to a
grey layer's ``Y'A u8`` by timing candidate chains when a process first needs it; under load
another chain wins, and chains round differently.  Measured in GIMP 3.2.6: the same bytes
written to a ``Y'A u8`` buffer by 8 processes, two at a time, came out two different ways
(a linear ``YA u16`` buffer: four), and a recover, a new process, placed a grey result
one level off the run in a few pixels.  Writing ``Y'A u8`` to such a layer converts
nothing; this module makes those bytes.

Grey is GIMP's: the luminance of linear light, ``Y = 0.2225 R + 0.7169 G + 0.0606 B``
(sRGB's primaries adapted to D50, as babl has them), encoded with the sRGB curve.  Each
channel's share is a 16-bit fixed-point lookup, the three shares of all pixels are added
at once as three big integers (no lane carries into the next: the shares of one pixel never
pass 65535), and the sum goes back through a 65536-entry table.  A grey pixel
(R = G = B) keeps its level exactly.  Cost: pure Python, about 0.1 s per megapixel, for
grey images only.
"""

from __future__ import annotations

import sys
from array import array
from functools import lru_cache

__all__ = ["WEIGHTS", "to_grey_alpha"]

WEIGHTS = (0.2225045, 0.7168786, 0.0606169)
SCALE = 65535


def _linear(v: float) -> float:
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


def _encoded(y: float) -> float:
    return 12.92 * y if y <= 0.0031308 else 1.055 * y ** (1 / 2.4) - 0.055


@lru_cache(maxsize=1)
def _tables() -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Per channel the low and high byte of its share, and the table from a sum to Y'."""
    shares = [[int(w * _linear(v / 255) * SCALE) for v in range(256)] for w in WEIGHTS]
    halves = [(bytes(s & 0xFF for s in share), bytes(s >> 8 for s in share)) for share in shares]
    back = bytearray(min(255, max(0, round(255 * _encoded(s / SCALE)))) for s in range(SCALE + 1))
    for v in range(256):  # a grey pixel keeps its level, whatever the rounding did
        back[sum(share[v] for share in shares)] = v
    return halves, bytes(back)


def to_grey_alpha(rgba: bytes) -> bytes:
    """RGBA u8 pixels (sRGB-encoded) as ``Y'A u8``: grey, and the alpha as it was."""
    n = len(rgba) // 4
    if n * 4 != len(rgba):
        raise ValueError("RGBA pixels come in fours")
    halves, back = _tables()
    total = 0
    for channel, (low, high) in enumerate(halves):
        plane = rgba[channel::4]
        lanes = bytearray(2 * n)
        lanes[0::2] = plane.translate(low)
        lanes[1::2] = plane.translate(high)
        total += int.from_bytes(lanes, "little")
    sums = array("H")
    sums.frombytes(total.to_bytes(2 * n, "little"))
    if sys.byteorder == "big":
        sums.byteswap()
    out = bytearray(2 * n)
    out[0::2] = bytes(map(back.__getitem__, sums))
    out[1::2] = rgba[3::4]
    return bytes(out)
