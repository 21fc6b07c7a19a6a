"""Colour matching: take the model's colour drift out of the new pixels before they are placed.

FLUX re-renders the whole canvas, so the part of the result over the original comes back with
a slight colour and tone drift, and the new band continues the drifted colours.  The seam
mask keeps the original exact, so the drift would show as a seam.  The drift is measured
where both are known — the result over the original against the reference that was sent, at
the request's scale — and its inverse is applied to the whole result.

Model and estimate.  Per channel, ``result ≈ gain · original + offset``, the gain tilting
as a plane across the picture (a VAE's gain is not the same everywhere either).  Samples are 3×3 box
means on a ``GRID``×``GRID`` lattice over the overlap (box means on both sides, so a slight
blur of the result does not read as a loss of contrast), kept away from the expanded edges
(the model is free to change the original's last pixels where it joins new content), from
pixels that are not opaque and from levels near black or white on either side (clipped: they
do not follow the drift).  A least-squares line is fitted whose gain and offset are planes
over the reference (the slopes of the gain damped by ``RIDGE``, so that a picture with
little spread on one side keeps its gain level), the ``TRIM`` share of samples with the
largest residuals is dropped (content the model changed), and it is fitted again.  A flat
overlap (too little spread to tell a gain) gets an offset only.

The drift is not uniform across a real model's picture: what the line leaves over is
gathered into a smooth offset field (``colorfield``) that follows the seam and fades to the
global line away from it.

Safety.  Gains are clamped to ``GAIN_RANGE`` and offsets to ``MAX_OFFSET``, and no level moves
by more than ``MAX_SHIFT``: a bad estimate cannot wreck the colours.  A drift below
``DEAD_GAIN`` / ``DEAD_OFFSET`` is no drift: the result is left exactly as it came.

Cost.  Pure Python: the estimate reads about 40 000 pixels whatever the image size; the
correction is one ``bytes.translate`` per channel and tile (``colorfield.apply_tables``),
well under 0.1 s at 4 MP (fal's largest output), so it runs inside GIMP's numpy-less Python.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from . import colorfield
from .colorfield import Field
from .geometry import Expansion, Rect
from .planning import Plan

__all__ = [
    "DEAD_GAIN",
    "DEAD_OFFSET",
    "GAIN_RANGE",
    "GRID",
    "IDENTITY",
    "MAX_OFFSET",
    "MAX_SHIFT",
    "Correction",
    "estimate",
    "for_plan",
    "on_result",
]

GRID = 48
# The share of the overlap's short side kept clear of each expanded edge (at least a few px).
EDGE_MARGIN_FRACTION = 0.05
EDGE_MARGIN_MIN = 4
TRIM = 0.25
TRIM_STEPS = 2
MIN_SAMPLES = 16
# Rounds of line and field fitted in turn.
ROUNDS = 2
# Below this variance of the original's samples (8-bit levels²) a gain cannot be told from
# noise: the fit keeps gain 1 and estimates the offset alone.
FLAT_VARIANCE = 36.0
GAIN_RANGE = (0.8, 1.25)
# Box sums (nine pixels) outside these bounds are at or near black or white on either side:
# clipping, not drift, decides them.
CLIP_LOW = 9 * 4
CLIP_HIGH = 9 * 251
# A sample whose 5×5 window in the original spans more than this many levels of green sits
# on an edge; edges are left out while at least FLAT_SHARE of the samples are flat.
FLAT_SPREAD = 24
FLAT_SHARE = 0.3
# How strongly the gain's slopes are pulled to zero, relative to the samples' spread.
RIDGE = 0.05
MAX_OFFSET = 40.0
MAX_SHIFT = 48
DEAD_GAIN = 0.01
DEAD_OFFSET = 1.0


@dataclass(frozen=True)
class Correction:
    """Per channel (R, G, B): the drift ``result = gain · original + offset`` to undo."""

    gains: tuple[float, float, float] = (1.0, 1.0, 1.0)
    offsets: tuple[float, float, float] = (0.0, 0.0, 0.0)
    samples: int = 0  # how many samples the estimate kept (0: none, identity)
    # The varying part (result pixels of the size it was measured on), or None.
    field: Field | None = None

    @property
    def is_identity(self) -> bool:
        return self.field is None and self._global_identity

    @property
    def _global_identity(self) -> bool:
        return all(
            abs(g - 1.0) < DEAD_GAIN and abs(o) < DEAD_OFFSET
            for g, o in zip(self.gains, self.offsets, strict=True)
        )

    def table(self, channel: int, local: float = 0.0, tilt: float = 0.0) -> bytes:
        """The 256-entry lookup table that undoes the drift of one channel, ``local`` being
        the field's residual offset and ``tilt`` its change of gain where they apply."""
        gain, offset = self.gains[channel], self.offsets[channel]
        if self._global_identity:
            gain, offset = 1.0, 0.0
        low, high = GAIN_RANGE
        return _table(min(max(gain + tilt, low), high), offset + local)

    def apply(
        self,
        rgba: bytes,
        width: int = 0,
        height: int = 0,
        areas: Sequence[Rect] | None = None,
    ) -> bytes:
        """RGBA u8 pixels (``width``×``height``; needed when there is a field) with the
        drift undone (alpha untouched); the input if no drift.  ``areas``: where the pixels
        will show (None: everywhere); elsewhere the global correction alone is applied."""
        if self.is_identity:
            return rgba
        out = bytearray(rgba)
        if self.field is None:
            for channel in range(3):
                out[channel::4] = out[channel::4].translate(self.table(channel))
            return bytes(out)
        if width * height * 4 != len(rgba):
            raise ValueError("a colour field needs the pixels' size")
        boxes = None if areas is None else [(a.x, a.y, a.width, a.height) for a in areas]
        colorfield.apply_tables(out, width, height, self.table, self.field, boxes)
        return bytes(out)

    def to_json(self) -> dict[str, object]:
        """For the journal, so that recover can place a result as the run did."""
        recorded: dict[str, object] = {"gains": list(self.gains), "offsets": list(self.offsets)}
        if self.field is not None:
            recorded["field"] = self.field.to_json()
        return recorded

    @classmethod
    def from_json(cls, data: object) -> Correction:
        """A recorded correction, clamped like an estimate; anything malformed is no
        correction (a damaged journal line must not recolour a paid result)."""
        if not isinstance(data, dict):
            return IDENTITY
        gains, offsets = data.get("gains"), data.get("offsets")
        if not (isinstance(gains, list) and isinstance(offsets, list)):
            return IDENTITY
        if len(gains) != 3 or len(offsets) != 3:
            return IDENTITY
        values = [*gains, *offsets]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return IDENTITY
        if not all(math.isfinite(v) for v in values):
            return IDENTITY
        low, high = GAIN_RANGE
        g = tuple(min(max(float(v), low), high) for v in gains)
        o = tuple(min(max(float(v), -MAX_OFFSET), MAX_OFFSET) for v in offsets)
        field = Field.from_json(data["field"]) if "field" in data else None
        if "field" in data and field is None:
            return IDENTITY
        return cls((g[0], g[1], g[2]), (o[0], o[1], o[2]), field=field)

    def describe(self) -> str:
        parts = [
            f"{name}×{g:.3f}{o:+.1f}"
            for name, g, o in zip("RGB", self.gains, self.offsets, strict=True)
        ]
        if self.field is not None:
            spread = max(abs(v) for channel in self.field.values for v in channel)
            parts.append(f"varying by up to ±{spread:.1f}")
        return "no colour drift" if self.is_identity else "colour drift " + " ".join(parts)


@lru_cache(maxsize=1024)
def _table(gain: float, offset: float) -> bytes:
    # a tilted field asks for a few hundred tables at 4 MP: no calls in the loop
    out = []
    for v in range(256):
        c = round((v - offset) / gain)
        if c < v - MAX_SHIFT:
            c = v - MAX_SHIFT
        elif c > v + MAX_SHIFT:
            c = v + MAX_SHIFT
        out.append(0 if c < 0 else 255 if c > 255 else c)
    return bytes(out)


IDENTITY = Correction()


def _box(buf: bytes, width: int, height: int, x: int, y: int) -> tuple[int, int, int, int]:
    """Sums of R, G, B over the 3×3 box at (x, y), and the smallest alpha in it."""
    if 1 <= x < width - 1 and 1 <= y < height - 1:  # inside: three runs of three pixels
        box = b"".join(
            buf[((y + d) * width + x - 1) * 4 : ((y + d) * width + x + 2) * 4] for d in (-1, 0, 1)
        )
        return sum(box[0::4]), sum(box[1::4]), sum(box[2::4]), min(box[3::4])
    r = g = b = 0
    alpha = 255
    for yy in (y - 1, y, y + 1):
        row = min(max(yy, 0), height - 1) * width
        for xx in (x - 1, x, x + 1):
            i = (row + min(max(xx, 0), width - 1)) * 4
            r += buf[i]
            g += buf[i + 1]
            b += buf[i + 2]
            alpha = min(alpha, buf[i + 3])
    return r, g, b, alpha


def _spread(buf: bytes, width: int, height: int, x: int, y: int) -> int:
    """Largest minus smallest green over the 5×5 window at (x, y): a softened result's 3×3
    box mean draws on that much of the original."""
    x0, x1 = max(x - 2, 0), min(x + 3, width)
    greens = b"".join(
        buf[(yy * width + x0) * 4 + 1 : (yy * width + x1) * 4 : 4]
        for yy in range(max(y - 2, 0), min(y + 3, height))
    )
    return max(greens) - min(greens)


def _fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs) / n
    if var < FLAT_VARIANCE:
        return 1.0, my - mx
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / n
    gain = cov / var
    return gain, my - gain * mx


def _solve(a: list[list[float]], b: list[float]) -> list[float] | None:
    """``a · x = b`` by Gaussian elimination with partial pivoting; None if singular."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        if abs(m[pivot][col]) < 1e-9:
            return None
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(col + 1, n):
            f = m[r][col] / m[col][col]
            if f:
                for k in range(col, n + 1):
                    m[r][k] -= f * m[col][k]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (m[r][n] - sum(m[r][k] * x[k] for k in range(r + 1, n))) / m[r][r]
    return x


Tilted = tuple[float, float, tuple[float, float]]


def _moments(
    xs: Sequence[float], ys: Sequence[float], us: Sequence[float], vs: Sequence[float], mx: float
) -> list[float]:
    """The sums the tilted line's normal equations need (columns x', x'u, x'v, 1, u, v with
    x' = x − mx, against y): one pass, the distinct products of a symmetric 6×6 matrix
    (plain locals: this loop is most of the estimate's time)."""
    xx = xxu = xxv = x1 = xu = xv = xxuu = xxuv = xuu = xuv = xxvv = xvv = 0.0
    u1 = v1 = uu1 = uv1 = vv1 = xy = xuy = xvy = y1 = uy = vy = 0.0
    for x, u, v, y in zip(xs, us, vs, ys, strict=True):
        d = x - mx
        du = d * u
        dv = d * v
        uu = u * u
        uv = u * v
        vv = v * v
        dd = d * d
        xx += dd
        xxu += dd * u
        xxv += dd * v
        x1 += d
        xu += du
        xv += dv
        xxuu += dd * uu
        xxuv += dd * uv
        xuu += d * uu
        xuv += d * uv
        xxvv += dd * vv
        xvv += d * vv
        u1 += u
        v1 += v
        uu1 += uu
        uv1 += uv
        vv1 += vv
        xy += d * y
        xuy += du * y
        xvy += dv * y
        y1 += y
        uy += u * y
        vy += v * y
    return [
        xx, xxu, xxv, x1, xu, xv, xxuu, xxuv, xuu, xuv, xxvv, xvv, u1, v1, uu1, uv1, vv1,
        xy, xuy, xvy, y1, uy, vy,
    ]  # fmt: skip


def _solve_tilted(sums: Sequence[float], n: int) -> list[float] | None:
    """(g, su, sv, c, tu, tv) of ``y ≈ (g + su·u + sv·v)·x' + c + tu·u + tv·v`` from
    ``_moments`` of ``n`` samples, the gain's slopes damped by ``RIDGE``; None when the
    samples are too flat to tell a gain."""
    xx, xxu, xxv, x1, xu, xv, xxuu, xxuv, xuu, xuv, xxvv, xvv, u1, v1, uu1, uv1, vv1 = sums[:17]
    xy, xuy, xvy, y1, uy, vy = sums[17:23]
    var = xx / n - (x1 / n) ** 2
    if var < FLAT_VARIANCE:
        return None
    a = [
        [xx, xxu, xxv, x1, xu, xv],
        [xxu, xxuu + RIDGE * n * var, xxuv, xu, xuu, xuv],
        [xxv, xxuv, xxvv + RIDGE * n * var, xv, xuv, xvv],
        [x1, xu, xv, float(n), u1, v1],
        [xu, xuu, xuv, u1, uu1, uv1],
        [xv, xuv, xvv, v1, uv1, vv1],
    ]
    return _solve(a, [xy, xuy, xvy, y1, uy, vy])


def _robust_line(xs: list[float], ys: list[float]) -> Tilted:
    """The level line: fitted, the ``TRIM`` share with the largest residuals dropped, fitted
    again."""
    gain, offset = _fit(xs, ys)
    residuals = sorted(range(len(xs)), key=lambda i: abs(ys[i] - (gain * xs[i] + offset)))
    kept = residuals[: max(MIN_SAMPLES, round(len(xs) * (1.0 - TRIM)))]
    gain, offset = _fit([xs[i] for i in kept], [ys[i] for i in kept])
    gain = min(max(gain, GAIN_RANGE[0]), GAIN_RANGE[1])
    return gain, min(max(offset, -MAX_OFFSET), MAX_OFFSET), (0.0, 0.0)


def _robust_fit(xs: list[float], ys: list[float], us: list[float], vs: list[float]) -> Tilted:
    """The tilted line (gain and offset at the reference's centre, the gain's slopes across
    it): fitted, then ``TRIM_STEPS`` times the ``TRIM`` share of all samples with the largest
    residuals against the last fit dropped and the rest fitted again (one step is not
    enough: a few samples far off, say an object the model moved, tilt the first fit, and
    the share it keeps inherits that tilt).  A flat set keeps gain 1 and no slopes."""
    n = len(xs)
    mx = sum(xs) / n
    sums = _moments(xs, ys, us, vs, mx)
    keep = max(MIN_SAMPLES, round(n * (1.0 - TRIM)))

    def line(picked: Sequence[int]) -> list[float]:
        gain, offset = _fit([xs[i] for i in picked], [ys[i] for i in picked])
        return [gain, 0.0, 0.0, offset + gain * mx, 0.0, 0.0]

    fit = _solve_tilted(sums, n) or line(range(n))
    for _ in range(TRIM_STEPS):
        g, su, sv, c, tu, tv = fit
        residuals = [
            abs(y - ((g + su * u + sv * v) * (x - mx) + c + tu * u + tv * v))
            for x, u, v, y in zip(xs, us, vs, ys, strict=True)
        ]
        order = sorted(range(n), key=residuals.__getitem__)
        kept, dropped = order[:keep], order[keep:]
        # the kept samples' sums are all the sums less the dropped ones'
        less = _moments(
            [xs[i] for i in dropped],
            [ys[i] for i in dropped],
            [us[i] for i in dropped],
            [vs[i] for i in dropped],
            mx,
        )
        fit = _solve_tilted([t - d for t, d in zip(sums, less, strict=True)], keep) or line(kept)
    g, su, sv, c, _, _ = fit
    gain = min(max(g, GAIN_RANGE[0]), GAIN_RANGE[1])
    offset = c - g * mx  # at the centre: y = g·x + (c − g·mx)
    slopes = (colorfield.clamp_slope(su), colorfield.clamp_slope(sv))
    return gain, min(max(offset, -MAX_OFFSET), MAX_OFFSET), slopes


def estimate(
    result: bytes,
    result_size: tuple[int, int],
    reference: bytes,
    reference_size: tuple[int, int],
    where: Rect,
    grown: Expansion,
) -> Correction:
    """The drift of ``result`` (RGBA u8, ``result_size``) against ``reference`` (the RGBA u8
    pixels that were sent, ``reference_size``), which the result shows at ``where`` (result
    coordinates; a uniformly scaled result is fine).  ``grown``: which sides were expanded
    (non-zero), so samples keep clear of the edges where new content begins."""
    rw, rh = reference_size
    width, height = result_size
    if len(reference) != rw * rh * 4 or len(result) != width * height * 4:
        raise ValueError("pixel buffers do not match their sizes")
    margin = max(EDGE_MARGIN_MIN, round(EDGE_MARGIN_FRACTION * min(rw, rh)))
    x0, x1 = (margin if grown.left else 1), rw - (margin if grown.right else 1) - 1
    y0, y1 = (margin if grown.top else 1), rh - (margin if grown.bottom else 1) - 1
    if x1 <= x0 or y1 <= y0:
        return IDENTITY
    sx, sy = where.width / rw, where.height / rh
    cols = [x0 + (x1 - x0) * i // (GRID - 1) for i in range(GRID)]
    rows = [y0 + (y1 - y0) * j // (GRID - 1) for j in range(GRID)]
    samples: list[tuple[tuple[int, int], tuple[int, ...], tuple[int, ...], bool]] = []
    us, vs = sorted(set(cols)), sorted(set(rows))
    for j, v in enumerate(vs):
        ry = min(height - 1, max(0, round(where.y + (v + 0.5) * sy - 0.5)))
        for i, u in enumerate(us):
            o = _box(reference, rw, rh, u, v)
            if o[3] < 255:
                continue
            rx = min(width - 1, max(0, round(where.x + (u + 0.5) * sx - 0.5)))
            r = _box(result, width, height, rx, ry)
            if not all(CLIP_LOW <= level <= CLIP_HIGH for level in (*o[:3], *r[:3])):
                continue  # a clipped level says nothing about the drift
            even = _spread(reference, rw, rh, u, v) <= FLAT_SPREAD
            samples.append(((i, j), o[:3], r[:3], even))
    if len(samples) < MIN_SAMPLES:
        return IDENTITY
    original = [[s[1][c] / 9.0 for s in samples] for c in range(3)]
    returned = [[s[2][c] / 9.0 for s in samples] for c in range(3)]
    at = [s[0] for s in samples]
    # An edge near a sample reads differently once the model has softened it: the line is
    # fitted on flat samples when there are enough of them (a picture all texture keeps
    # every sample), and the field prefers them cell by cell.
    flat = [s[3] for s in samples]
    if sum(flat) < FLAT_SHARE * len(samples) or sum(flat) < MIN_SAMPLES:
        flat = [True] * len(samples)
    columns = [where.x + (u + 0.5) * sx for u in us]
    lines = [where.y + (v + 0.5) * sy for v in vs]
    inner = (float(where.x), float(where.y), float(where.width), float(where.height))
    # The global line and the field explain each other's leftovers: a cast that ramps
    # across the picture would otherwise pass for a gain.  Fit the line, gather the field
    # from what it leaves, fit the line again on the pixels less the field, and so on.
    # where each sample sits across the reference, -1 to 1 (the gain's plane)
    half_w, half_h = max(where.width / 2, 1e-6), max(where.height / 2, 1e-6)
    across = [(columns[i] - where.x - half_w) / half_w for i, _ in at]
    down = [(lines[j] - where.y - half_h) / half_h for _, j in at]
    u_flat = [u for u, f in zip(across, flat, strict=True) if f]
    v_flat = [v for v, f in zip(down, flat, strict=True) if f]
    local = [[0.0] * len(at) for _ in range(3)]
    field: Field | None = None
    # A tilt too small to matter on every channel is none: the plain line then (a tilted
    # fit carries two more offset terms that a level line would not drop)
    tilted = True
    for _ in range(ROUNDS):
        xs = [[x for x, f in zip(original[c], flat, strict=True) if f] for c in range(3)]
        ys = [
            [y - d for y, d, f in zip(returned[c], local[c], flat, strict=True) if f]
            for c in range(3)
        ]
        fits = [
            _robust_fit(xs[c], ys[c], u_flat, v_flat) if tilted else _robust_line(xs[c], ys[c])
            for c in range(3)
        ]
        if tilted and not any(abs(su) + abs(sv) >= colorfield.DEAD_SLOPE for *_, (su, sv) in fits):
            tilted = False
            fits = [_robust_line(xs[c], ys[c]) for c in range(3)]

        def residual(c: int, k: int, fits: list[Tilted] = fits) -> float:
            gain, offset, (su, sv) = fits[c]
            tilt = su * across[k] + sv * down[k]
            return returned[c][k] - (gain + tilt) * original[c][k] - offset

        residuals = {
            ij: (residual(0, k), residual(1, k), residual(2, k), flat[k]) for k, ij in enumerate(at)
        }
        slopes = tuple(fit[2] for fit in fits)
        field = colorfield.from_residuals(residuals, columns, lines, inner, slopes)
        if field is None:
            break
        local = [[field.cell_of(c, i, j) for i, j in at] for c in range(3)]
    correction = Correction(
        (fits[0][0], fits[1][0], fits[2][0]),
        (fits[0][1], fits[1][1], fits[2][1]),
        len(original[0]),
        field,
    )
    return IDENTITY if correction.is_identity else correction


def on_result(areas: Iterable[Rect], placement: Rect, size: tuple[int, int]) -> list[Rect]:
    """``areas`` (image coordinates) as rectangles of a result of ``size`` that lands on
    ``placement``, rounded outwards: where ``Correction.apply`` needs the field."""
    sx, sy = size[0] / placement.width, size[1] / placement.height
    out = []
    for a in areas:
        x0 = math.floor((a.x - placement.x) * sx)
        y0 = math.floor((a.y - placement.y) * sy)
        x1 = math.ceil((a.right - placement.x) * sx)
        y1 = math.ceil((a.bottom - placement.y) * sy)
        out.append(Rect(x0, y0, max(0, x1 - x0), max(0, y1 - y0)))
    return out


def for_plan(
    result: bytes, result_size: tuple[int, int], reference: bytes, plan: Plan
) -> Correction:
    """``estimate`` for a returned image of ``plan``: the reference sits where the plan put it
    (``request_expansion`` from the top left), scaled with the result if fal returned another
    size of the same shape."""
    rw, rh = plan.request_reference
    ow, oh = plan.request_output
    sx, sy = result_size[0] / ow, result_size[1] / oh
    rexp = plan.request_expansion
    where = Rect(round(rexp.left * sx), round(rexp.top * sy), round(rw * sx), round(rh * sy))
    return estimate(result, result_size, reference, (rw, rh), where, plan.source.expansion.sides())
