"""Grain match: the original's noise put back into a new band that was enlarged.

Over fal's 4 MP the request is a shrunk copy, and the new band comes back at that scale; the
plug-in and the CLI enlarge only the band.  The enlarged band is smooth beside a grainy
photo: its fine detail is a fraction of the original's (a plain seam at 100 %).  The fix is
to measure the noise of the original just inside the seam and of the enlarged band just
outside it, both at the canvas's pixel scale, and to add what is missing as fresh grain.

Measure.  Immerkær's estimator ("Fast noise variance estimation", 1996): the 3×3 kernel
[1 -2 1; -2 4 -2; 1 -2 1] cancels edges and smooth gradients, so its response is mostly
noise; its median absolute value over a lattice of samples (``SAMPLES``) reads the flat areas,
which are the majority of a strip of photo.  For Gaussian noise of deviation σ the response
has deviation 6σ, and the median of its absolute value is 0.6745 of that.  Luma (Rec. 601
weights) gives the luminance grain; what the channels carry beyond it is the chroma grain.

Decide.  Nothing is added when the band was not enlarged (scale under ``MIN_SCALE``), or the
original is clean (less than ``MIN_SIGMA`` of missing grain).  Otherwise the missing part,
``sqrt(σ_original² − σ_band²)`` for luma and chroma, clamped to ``MAX_SIGMA``.

Synthesis.  White noise at the canvas's pixel scale, luma shared by the three channels plus
independent chroma, from a seeded generator: a given result, placed at a given place, always
gets the same grain (``seed`` comes from the result's bytes and the placement), so recover
places the pixels of the run.  The CLI draws Gaussian noise with numpy; the GIMP plug-in
composites seeded random bytes (``noise_bytes`` through ``noise_tables``) with GdkPixbuf at
a small opacity after a table (``precompensation``) has made room for them: all C, no
per-pixel Python.  Neither repeats: every chunk draws its own bytes.
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass

from .geometry import Expansion, Rect

__all__ = [
    "MAX_SIGMA",
    "MIN_SCALE",
    "MIN_SIGMA",
    "NONE",
    "SAMPLES",
    "Grain",
    "decide",
    "noise_bytes",
    "noise_sigma",
    "noise_tables",
    "precompensation",
    "probes",
    "seed_for",
]

MIN_SCALE = 1.15
MIN_SIGMA = 0.4
MAX_SIGMA = 12.0
SAMPLES = 6000
# How deep (px) into the original and the band the noise is measured.
PROBE_DEPTH = 64
# Median |Immerkær response| per unit of noise deviation.
_RESPONSE_PER_SIGMA = 0.6745 * 6.0
_LUMA_W2 = 0.299**2 + 0.587**2 + 0.114**2
# The mean of the noise bytes the composite lays over the pixels.
UNIFORM_MEAN = 127.5
# What GdkPixbuf's composite loses on average by truncating its integer blend (levels).
COMPOSITE_TRUNCATION = 0.5


@dataclass(frozen=True)
class Grain:
    """Grain to add (deviation in 8-bit levels at the canvas's scale) and its seed."""

    luma: float = 0.0
    chroma: float = 0.0
    seed: int = 0

    @property
    def is_none(self) -> bool:
        return self.luma < MIN_SIGMA and self.chroma < MIN_SIGMA

    def to_json(self) -> dict[str, float | int]:
        return {"luma": round(self.luma, 3), "chroma": round(self.chroma, 3), "seed": self.seed}

    @classmethod
    def from_json(cls, data: object) -> Grain:
        """A recorded grain, clamped; anything malformed is no grain."""
        if not isinstance(data, dict):
            return NONE
        values: list[float] = []
        for name in ("luma", "chroma", "seed"):
            v = data.get(name)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)):
                return NONE
            values.append(float(v))
        luma, chroma = (min(max(v, 0.0), MAX_SIGMA) for v in values[:2])
        return cls(luma, chroma, int(values[2]) & 0xFFFFFFFF)

    def describe(self) -> str:
        if self.is_none:
            return "no grain added"
        return f"grain added: luma σ {self.luma:.2f}, chroma σ {self.chroma:.2f}"


NONE = Grain()


def noise_sigma(
    rgba: bytes, width: int, height: int, area: Rect | None = None
) -> tuple[float, float]:
    """(luma σ, chroma σ) of RGBA u8 pixels in ``area`` (default all), in 8-bit levels."""
    if len(rgba) != width * height * 4:
        raise ValueError("pixel buffer does not match its size")
    area = Rect(0, 0, width, height) if area is None else area
    x0, y0 = max(1, area.x + 1), max(1, area.y + 1)
    x1, y1 = min(width - 1, area.right - 1), min(height - 1, area.bottom - 1)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return 0.0, 0.0
    n = max(1, int(math.sqrt(SAMPLES * (x1 - x0) / (y1 - y0))))
    m = max(1, SAMPLES // n)
    xs = sorted({x0 + (x1 - x0 - 1) * i // max(1, n - 1) for i in range(n)})
    ys = sorted({y0 + (y1 - y0 - 1) * j // max(1, m - 1) for j in range(m)})
    stride = width * 4
    luma: list[float] = []
    channel: list[float] = []
    for y in ys:
        for x in xs:
            i = y * stride + x * 4
            responses = []
            for c in range(3):
                k = i + c
                centre = 4 * rgba[k]
                edges = rgba[k - 4] + rgba[k + 4] + rgba[k - stride] + rgba[k + stride]
                corners = (
                    rgba[k - stride - 4]
                    + rgba[k - stride + 4]
                    + rgba[k + stride - 4]
                    + rgba[k + stride + 4]
                )
                responses.append(centre - 2 * edges + corners)
            r, g, b = responses
            luma.append(abs(0.299 * r + 0.587 * g + 0.114 * b))
            channel.extend((abs(r), abs(g), abs(b)))
    y2 = (_median(luma) / _RESPONSE_PER_SIGMA) ** 2
    channel2 = (_median(channel) / _RESPONSE_PER_SIGMA) ** 2
    # Shared luma grain L and independent chroma grain C per channel: a channel carries
    # L² + C², the Rec. 601 luma L² + W·C² (W: the sum of the weights' squares).
    chroma2 = max(0.0, (channel2 - y2) / (1.0 - _LUMA_W2))
    return math.sqrt(max(0.0, y2 - _LUMA_W2 * chroma2)), math.sqrt(chroma2)


def _median(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def decide(
    original: tuple[float, float], band: tuple[float, float], scale: float, seed: int
) -> Grain:
    """The grain to add to a band enlarged ``scale`` times, from the noise (luma, chroma)
    measured in the original and in the band."""
    if scale < MIN_SCALE:
        return NONE
    luma = math.sqrt(max(0.0, original[0] ** 2 - band[0] ** 2))
    chroma = math.sqrt(max(0.0, original[1] ** 2 - band[1] ** 2))
    # rounded as the journal records it: a recover must draw exactly the same grain
    grain = Grain(
        round(min(luma, MAX_SIGMA), 3), round(min(chroma, MAX_SIGMA), 3), seed & 0xFFFFFFFF
    )
    return NONE if grain.is_none else grain


def seed_for(result: bytes, *numbers: int) -> int:
    """A seed from the returned picture's bytes and the placement's numbers."""
    return zlib.crc32(repr(numbers).encode(), zlib.crc32(result)) & 0xFFFFFFFF


def noise_bytes(seed: int, key: tuple[int, ...], count: int) -> bytes:
    """``count`` uniform random bytes for one piece of the band (``key``: its place), the
    same for the same seed and key on every run and every Python."""
    return random.Random(seed_for(seed.to_bytes(4, "little"), *key)).randbytes(count)


# One random byte a pixel makes both grains: its top five bits the luma (shared by the three
# channels), each of its three low bits the sign of one channel's chroma.
_LUMA_LEVELS = 32
_LUMA_SIGMA = _LUMA_LEVELS / math.sqrt(12.0)


def noise_tables(made: Grain) -> tuple[int, tuple[bytes, bytes, bytes]]:
    """(opacity, a table per channel): random bytes through each channel's table, composited
    over the pixels at that opacity, add ``made``'s luma and chroma grain in one pass.

    The source byte is 127.5 + K·(luma − 15.5) ± c: K as large as fits a byte (the smaller
    the opacity, the less a composite disturbs the levels), c/K the chroma's share."""
    if made.luma <= 0 and made.chroma <= 0:
        return 0, (bytes(range(256)),) * 3
    # the luma part's deviation K·σ32 and the chroma part's c keep the ratio chroma/luma
    ratio = made.chroma / made.luma if made.luma > 0 else 4.0
    k = 127.0 / (15.5 + ratio * _LUMA_SIGMA)
    c = ratio * _LUMA_SIGMA * k
    reach = k * _LUMA_SIGMA if made.luma > 0 else c
    sigma = made.luma if made.luma > 0 else made.chroma
    alpha = max(1, min(128, round(sigma * 255 / reach)))
    tables = []
    for bit in range(3):
        tables.append(
            bytes(
                min(
                    255,
                    max(
                        0, round(UNIFORM_MEAN + k * ((m >> 3) - 15.5) + (c if m >> bit & 1 else -c))
                    ),
                )
                for m in range(256)
            )
        )
    return alpha, (tables[0], tables[1], tables[2])


def precompensation(alpha: int) -> bytes:
    """The table that makes room for a composite at ``alpha``: compositing maps v to
    v·(1 − a) + noise·a, truncated (GdkPixbuf's integer blend loses half a level on
    average), so v is first mapped to (v − a·mean + ½)/(1 − a); the composite then leaves
    every level where it was on average, plus the noise."""
    if alpha <= 0:
        return bytes(range(256))
    a = alpha / 255.0
    return bytes(
        min(255, max(0, round((v - a * UNIFORM_MEAN + COMPOSITE_TRUNCATION) / (1.0 - a))))
        for v in range(256)
    )


def probes(
    reference: Rect, expansion: Expansion, depth: int = PROBE_DEPTH
) -> tuple[Rect, Rect] | None:
    """Where to measure: a strip just inside the original along its most grown side, and
    the same strip just outside it in the new band (image coordinates); None if nothing grew."""
    amounts = {
        "left": expansion.left,
        "right": expansion.right,
        "top": expansion.top,
        "bottom": expansion.bottom,
    }
    side = max(amounts, key=lambda k: amounts[k])
    grown = amounts[side]
    if grown <= 0:
        return None
    r = reference
    if side in ("left", "right"):
        d = max(3, min(depth, grown, r.width))
        inside_x = r.x if side == "left" else r.right - d
        outside_x = r.x - d if side == "left" else r.right
        return Rect(inside_x, r.y, d, r.height), Rect(outside_x, r.y, d, r.height)
    d = max(3, min(depth, grown, r.height))
    inside_y = r.y if side == "top" else r.bottom - d
    outside_y = r.y - d if side == "top" else r.bottom
    return Rect(r.x, inside_y, r.width, d), Rect(r.x, outside_y, r.width, d)
