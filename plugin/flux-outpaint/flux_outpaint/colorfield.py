"""The part of the model's colour drift that varies across the picture: a smooth offset field
and a gain that tilts across it.

A FLUX VAE does not drift by one gain and offset over the whole canvas: the cast changes from
region to region.  ``colormatch`` fits the global line; what is left over (the residual of
each sample against that line) is gathered here into a coarse grid of cells over the overlap.

Estimate.  Each cell's value is the median residual of its samples (content the model
changed inside a cell does not drag it); a cell far beyond any drift (``CHANGED``) or far
from the median of the 5×5 cells around it (``OUTLIER``) is left out (a moved object that
fills a few cells does not either); then a 3×3 median over the cells, a 3×3 mean (the
texture's noise), and a clamp to ``MAX_FIELD``.  A field under ``DEAD_FIELD`` everywhere is
noise, not drift: none.  Cells without samples (transparent reference) take their nearest
neighbours' values.

The gain.  An offset cannot follow a gain that changes across the picture: within one cell
a dark and a light pixel drift by different amounts.  ``colormatch`` fits the line's gain as
a plane over the reference (``slopes``: per channel, the change of gain from the centre to
the right edge and to the bottom edge); the field carries it like its offsets.

Carrying it into the new pixels.  At a point inside the span of cell centres the field is
the bilinear interpolation of the cells; between the outermost centres and the reference's
edges it goes on linearly; beyond, the value at the nearest point of the reference (a
projection on a rectangle is continuous, so two grown sides meet at a corner without a
step), fading towards zero — the global estimate — with the distance from the reference,
over ``FADE_FRACTION`` of the reference's short side.  Along the seam the correction is the
local drift; far from it, the robust global one.

Applying it.  The field is smooth, so it is constant over tiles of ``TILE`` pixels: each tile
gets its own 256-entry table per channel (offset in half levels, gain in ``GAIN_STEP``s).
A band of ``TILE`` rows of one channel is turned column-major with strided slice
assignments, so a tile is one contiguous run and its table one ``bytes.translate``: a few
tens of thousands of C calls at 4 MP, no per-pixel Python.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

__all__ = [
    "FADE_FRACTION",
    "MAX_FIELD",
    "TILE",
    "Field",
    "from_residuals",
]

# The lattice of samples is cut into cells of CELL×CELL samples.
CELL = 3
MAX_FIELD = 24.0
# A cell whose residual is beyond CHANGED levels, or OUTLIER levels from the cells around
# it, shows changed content, not drift.
CHANGED = 20.0
OUTLIER = 5.0
# A cell with this many flat samples is measured on them alone.
MIN_FLAT = 3
FADE_FRACTION = 0.5
TILE = 16
# A tile's gain is rounded to this step: at most a quarter level at white.
GAIN_STEP = 1.0 / 512
# The gain's change from the reference's centre to an edge, at most (per axis).
MAX_SLOPE = 0.06
# A field this small everywhere (8-bit levels) is none: noise, not drift.
DEAD_FIELD = 1.5
# A tilt that moves a mid-grey level by less than DEAD_FIELD at the reference's corners, on
# every channel, is none (noise, or a few samples the trimmed fit did not drop).
DEAD_SLOPE = DEAD_FIELD / 128
# How many cells the journal may carry (a damaged or hostile record is refused beyond it).
MAX_CELLS = 4096


@dataclass(frozen=True)
class Field:
    """Residual offsets (R, G, B) on a ``cols``×``rows`` grid of cell centres in result
    pixels: the first centre at ``origin``, ``step`` apart.  ``inner`` (x, y, w, h) is the
    reference's place on the result: outside it the field fades over ``fade`` pixels."""

    cols: int
    rows: int
    origin: tuple[float, float]
    step: tuple[float, float]
    inner: tuple[float, float, float, float]
    fade: float
    values: tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]
    slopes: tuple[tuple[float, float], ...] = ((0.0, 0.0),) * 3

    @property
    def is_zero(self) -> bool:
        return self.level and not self.tilted

    @property
    def level(self) -> bool:
        """No offset anywhere beyond noise."""
        return all(abs(v) < DEAD_FIELD for channel in self.values for v in channel)

    @property
    def tilted(self) -> bool:
        return any(abs(a) + abs(b) >= DEAD_SLOPE for a, b in self.slopes)

    def tilt_at(self, channel: int, x: float, y: float) -> float:
        """The gain's change from the centre's at result position (x, y): the plane at the
        nearest point of the reference, fading like the offsets beyond it."""
        su, sv = self.slopes[channel]
        ix, iy, iw, ih = self.inner
        half_w, half_h = max(iw / 2, 1e-6), max(ih / 2, 1e-6)
        u = min(max((x - ix - half_w) / half_w, -1.0), 1.0)
        v = min(max((y - iy - half_h) / half_h, -1.0), 1.0)
        value = su * u + sv * v
        dx = max(ix - x, 0.0, x - (ix + iw))
        dy = max(iy - y, 0.0, y - (iy + ih))
        if dx or dy:
            value *= math.exp(-math.hypot(dx, dy) / self.fade)
        return value

    def at(self, channel: int, x: float, y: float) -> float:
        """The field at result position (x, y) (pixel centres at +0.5)."""
        ix, iy, iw, ih = self.inner
        u, i, fu = _axis(x, self.origin[0], self.step[0], self.cols, ix, ix + iw)
        v, j, fv = _axis(y, self.origin[1], self.step[1], self.rows, iy, iy + ih)
        grid = self.values[channel]
        i1 = min(i + 1, self.cols - 1)
        j1 = min(j + 1, self.rows - 1)
        top = grid[j * self.cols + i] * (1 - fu) + grid[j * self.cols + i1] * fu
        bottom = grid[j1 * self.cols + i] * (1 - fu) + grid[j1 * self.cols + i1] * fu
        value = top * (1 - fv) + bottom * fv
        value = min(max(value, -MAX_FIELD), MAX_FIELD)
        dx = max(ix - x, 0.0, x - (ix + iw))
        dy = max(iy - y, 0.0, y - (iy + ih))
        if dx or dy:
            value *= math.exp(-math.hypot(dx, dy) / self.fade)
        return value

    def columns(self, xs: Sequence[float]) -> list[tuple[int, float, float, float]]:
        """Per x: its cell, the next cell's weight, its distance beyond the reference and
        where it sits across it (-1 to 1, for the tilt); for ``tile_keys``."""
        ix, _, iw, _ = self.inner
        half = max(iw / 2, 1e-6)
        out = []
        for x in xs:
            _, i, fu = _axis(x, self.origin[0], self.step[0], self.cols, ix, ix + iw)
            far = max(ix - x, 0.0, x - (ix + iw))
            out.append((i, fu, far, min(max((x - ix - half) / half, -1.0), 1.0)))
        return out

    def tile_keys(
        self,
        channel: int,
        y: float,
        across: Sequence[tuple[int, float, float, float]],
        spans: Sequence[tuple[int, int]],
    ) -> dict[int, tuple[float, float]]:
        """For the tiles of one row (centre height ``y``) in the runs ``spans`` of column
        indices into ``across`` (``columns``): the offset in half levels and the gain's
        change in ``GAIN_STEP``s, ``at`` and ``tilt_at`` rounded (worked out a row at a time,
        only where the field shows: this is the correction's inner loop)."""
        _, iy, _, ih = self.inner
        _, j, fv = _axis(y, self.origin[1], self.step[1], self.rows, iy, iy + ih)
        cols, last = self.cols, self.cols - 1
        values = self.values[channel]
        top = values[j * cols : (j + 1) * cols]
        j1 = min(j + 1, self.rows - 1)
        bottom = values[j1 * cols : (j1 + 1) * cols]
        mixed = [a * (1 - fv) + b * fv for a, b in zip(top, bottom, strict=True)]
        dy = max(iy - y, 0.0, y - (iy + ih))
        su, sv = self.slopes[channel]
        half_h = max(ih / 2, 1e-6)
        down = min(max((y - iy - half_h) / half_h, -1.0), 1.0) * sv
        keys = {}
        for first, end in spans:
            for k in range(first, end):
                i, fu, dx, u = across[k]
                value = mixed[i] * (1 - fu) + mixed[min(i + 1, last)] * fu
                value = min(max(value, -MAX_FIELD), MAX_FIELD)
                tilt = u * su + down
                if dx or dy:
                    fade = math.exp(-math.hypot(dx, dy) / self.fade)
                    value *= fade
                    tilt *= fade
                keys[k] = (round(value * 2) / 2, float(round(tilt / GAIN_STEP)))
        return keys

    def cell_of(self, channel: int, i: int, j: int) -> float:
        """The value of the cell that holds lattice sample (i, j) (see ``from_residuals``)."""
        ci, cj = min(i // CELL, self.cols - 1), min(j // CELL, self.rows - 1)
        return self.values[channel][cj * self.cols + ci]

    def scaled(self, sx: float, sy: float) -> Field:
        """The same field on a result scaled by (sx, sy)."""
        ix, iy, iw, ih = self.inner
        return Field(
            self.cols,
            self.rows,
            (self.origin[0] * sx, self.origin[1] * sy),
            (self.step[0] * sx, self.step[1] * sy),
            (ix * sx, iy * sy, iw * sx, ih * sy),
            self.fade * math.sqrt(sx * sy),
            self.values,
            self.slopes,
        )

    def to_json(self) -> dict[str, object]:
        recorded: dict[str, object] = {
            "cols": self.cols,
            "rows": self.rows,
            "origin": list(self.origin),
            "step": list(self.step),
            "inner": list(self.inner),
            "fade": self.fade,
            "values": [[round(v, 2) for v in channel] for channel in self.values],
        }
        if self.tilted:  # older readers ignore the key (and place without the tilt)
            recorded["slopes"] = [list(pair) for pair in self.slopes]
        return recorded

    @classmethod
    def from_json(cls, data: object) -> Field | None:
        """A recorded field, clamped; None for anything malformed."""
        if not isinstance(data, dict):
            return None
        try:
            cols, rows = data["cols"], data["rows"]
            numbers = [*data["origin"], *data["step"], *data["inner"], data["fade"]]
            values = data["values"]
        except (KeyError, TypeError):
            return None
        if not all(_number(n) for n in (cols, rows, *numbers)):
            return None
        cols, rows = int(cols), int(rows)
        if not (cols >= 1 and rows >= 1 and cols * rows <= MAX_CELLS and len(numbers) == 9):
            return None
        if not (isinstance(values, list) and len(values) == 3):
            return None
        channels = []
        for channel in values:
            if not (isinstance(channel, list) and len(channel) == cols * rows):
                return None
            if not all(_number(v) for v in channel):
                return None
            channels.append(tuple(min(max(float(v), -MAX_FIELD), MAX_FIELD) for v in channel))
        ox, oy, sx, sy, ix, iy, iw, ih, fade = (float(n) for n in numbers)
        if min(sx, sy, fade) <= 0:
            return None
        slopes = data.get("slopes", [[0.0, 0.0]] * 3)
        if not (isinstance(slopes, list) and len(slopes) == 3):
            return None
        if not all(isinstance(p, list) and len(p) == 2 and all(map(_number, p)) for p in slopes):
            return None
        return cls(
            cols,
            rows,
            (ox, oy),
            (sx, sy),
            (ix, iy, iw, ih),
            fade,
            (channels[0], channels[1], channels[2]),
            tuple((clamp_slope(a), clamp_slope(b)) for a, b in slopes),
        )


def _axis(
    p: float, origin: float, step: float, n: int, low: float, high: float
) -> tuple[float, int, float]:
    """Grid coordinate of ``p`` along one axis, its cell and the weight of the next one.

    Between the outermost cell centres and the reference's edges (the margin the samples
    keep from the grown sides) the field goes on linearly; beyond the edges it stays at the
    edge's value: the seam sees the local drift, not the drift one cell further in."""
    if n == 1:
        return 0.0, 0, 0.0
    u = (p - origin) / step
    u = min(max(u, min(0.0, (low - origin) / step)), max(n - 1.0, (high - origin) / step))
    i = min(max(int(math.floor(u)), 0), n - 2)
    return u, i, u - i


def clamp_slope(v: float) -> float:
    return min(max(float(v), -MAX_SLOPE), MAX_SLOPE)


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


def from_residuals(
    residuals: dict[tuple[int, int], tuple[float, float, float, bool]],
    columns: Sequence[float],
    rows: Sequence[float],
    inner: tuple[float, float, float, float],
    slopes: tuple[tuple[float, float], ...] = ((0.0, 0.0),) * 3,
) -> Field | None:
    """The field from per-sample residuals (against the tilted line: ``slopes`` is carried
    as it is): ``residuals[(i, j)]`` is the residual (R, G, B)
    of the sample at lattice column ``i`` and row ``j``, whose result positions are
    ``columns[i]`` and ``rows[j]``, and whether the sample is flat (no edge near it: a
    softened edge reads as a residual, so a cell with enough flat samples uses only those).
    None when there is no drift left to correct."""
    ncols = max(1, len(columns) // CELL)
    nrows = max(1, len(rows) // CELL)
    cells: list[list[float | None]] = [[None] * (ncols * nrows) for _ in range(3)]
    for cj in range(nrows):
        for ci in range(ncols):
            got = [
                residuals[(i, j)]
                for j in range(cj * CELL, min(len(rows), (cj + 1) * CELL))
                for i in range(ci * CELL, min(len(columns), (ci + 1) * CELL))
                if (i, j) in residuals
            ]
            flat = [g for g in got if g[3]]
            if len(flat) >= MIN_FLAT:
                got = flat
            if len(got) * 2 > CELL * CELL or len(flat) >= MIN_FLAT:  # enough to tell
                medians = [_median([g[c] for g in got]) for c in range(3)]
                if max(abs(m) for m in medians) <= CHANGED:
                    for c in range(3):
                        cells[c][cj * ncols + ci] = medians[c]
    if all(v is None for v in cells[0]):
        return None
    # A cell far from the median of the 5×5 cells around it shows content the model
    # changed there (something moved or appeared), not drift: it is left out, for all three
    # channels, and filled from its neighbours like a cell without samples.
    filled = [_fill_holes(cells[c], ncols, nrows) for c in range(3)]
    around = [_median_around(filled[c], ncols, nrows, 2) for c in range(3)]
    for k in range(ncols * nrows):
        if any(abs(filled[c][k] - around[c][k]) > OUTLIER for c in range(3)):
            for c in range(3):
                cells[c][k] = None
    if all(v is None for v in cells[0]):
        return None
    values = []
    for c in range(3):
        grid = _fill_holes(cells[c], ncols, nrows)
        grid = _median3(grid, ncols, nrows)
        grid = _median3(grid, ncols, nrows, _mean)
        values.append(tuple(round(_clamped(v), 2) for v in grid))

    def centre(positions: Sequence[float], n: int) -> Callable[[int], float]:
        return lambda k: (
            sum(positions[k * CELL : (k + 1) * CELL]) / len(positions[k * CELL : (k + 1) * CELL])
        )

    cx, cy = centre(columns, ncols), centre(rows, nrows)
    step_x = (cx(ncols - 1) - cx(0)) / (ncols - 1) if ncols > 1 else 1.0
    step_y = (cy(nrows - 1) - cy(0)) / (nrows - 1) if nrows > 1 else 1.0
    field = Field(
        ncols,
        nrows,
        (cx(0), cy(0)),
        (max(step_x, 1e-6), max(step_y, 1e-6)),
        inner,
        max(8.0, FADE_FRACTION * min(inner[2], inner[3])),
        (values[0], values[1], values[2]),
        tuple((clamp_slope(a), clamp_slope(b)) for a, b in slopes),
    )
    if not field.tilted:
        field = replace(field, slopes=((0.0, 0.0),) * 3)
    if field.level:  # the two parts are judged apart: noise in one must not ride on the other
        zeros = (0.0,) * len(values[0])
        field = replace(field, values=(zeros, zeros, zeros))
    return None if field.is_zero else field


def _clamped(v: float) -> float:
    return min(max(v, -MAX_FIELD), MAX_FIELD)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _fill_holes(grid: list[float | None], cols: int, rows: int) -> list[float]:
    """Cells without samples take the mean of their known neighbours, ring by ring."""
    known = list(grid)
    while any(v is None for v in known):
        nxt = list(known)
        for j in range(rows):
            for i in range(cols):
                if known[j * cols + i] is not None:
                    continue
                around = [
                    known[jj * cols + ii]
                    for jj in range(max(0, j - 1), min(rows, j + 2))
                    for ii in range(max(0, i - 1), min(cols, i + 2))
                    if known[jj * cols + ii] is not None
                ]
                if around:
                    nxt[j * cols + i] = sum(a for a in around if a is not None) / len(around)
        known = nxt
    return [float(v) for v in known if v is not None]


def _median_around(grid: list[float], cols: int, rows: int, reach: int) -> list[float]:
    return [
        _median(
            [
                grid[jj * cols + ii]
                for jj in range(max(0, j - reach), min(rows, j + reach + 1))
                for ii in range(max(0, i - reach), min(cols, i + reach + 1))
            ]
        )
        for j in range(rows)
        for i in range(cols)
    ]


def _median3(
    grid: list[float],
    cols: int,
    rows: int,
    pick: Callable[[Sequence[float]], float] | None = None,
) -> list[float]:
    """3×3 medians (or ``pick`` of the nine); beyond the border the grid goes on linearly,
    so that a ramp (the commonest cast) keeps its slope up to the edge instead of
    flattening there."""
    choose = pick or _median

    def get(i: int, j: int) -> float:
        if i < 0 or i >= cols:
            edge, inner = (0, 1) if i < 0 else (cols - 1, cols - 2)
            return 2 * get(edge, j) - get(inner, j) if cols > 1 else get(edge, j)
        if j < 0 or j >= rows:
            edge, inner = (0, 1) if j < 0 else (rows - 1, rows - 2)
            return 2 * get(i, edge) - get(i, inner) if rows > 1 else get(i, edge)
        return grid[j * cols + i]

    return [
        choose([get(i + di, j + dj) for dj in (-1, 0, 1) for di in (-1, 0, 1)])
        for j in range(rows)
        for i in range(cols)
    ]


def apply_tables(
    out: bytearray,
    width: int,
    height: int,
    table: Callable[[int, float, float], bytes],
    field: Field,
    areas: Sequence[tuple[int, int, int, int]] | None = None,
) -> None:
    """Each colour channel of the RGBA u8 ``out`` through ``table(channel, offset, gain)``,
    the offset and the gain's change being the field's at each ``TILE``×``TILE`` tile's
    centre (rounded to half levels and ``GAIN_STEP``).

    ``areas`` (x, y, w, h): where the field is wanted (the pixels that will show); tiles
    outside them get the global table alone (no offset, no change of gain), which costs one
    call per band."""
    xs = [x0 + min(TILE, width - x0) / 2.0 for x0 in range(0, width, TILE)]
    ys = [y0 + min(TILE, height - y0) / 2.0 for y0 in range(0, height, TILE)]
    spans = [_span(y0, min(TILE, height - y0), width, areas) for y0 in range(0, height, TILE)]
    across = field.columns(xs)
    for channel in range(3):
        tables: dict[tuple[float, float], bytes] = {}

        def lut(
            key: tuple[float, float],
            channel: int = channel,
            tables: dict[tuple[float, float], bytes] = tables,
        ) -> bytes:
            got = tables.get(key)
            if got is None:
                got = tables[key] = table(channel, key[0], key[1] * GAIN_STEP)
            return got

        plane = bytearray(out[channel::4])
        for y0, y, spans_here in zip(range(0, height, TILE), ys, spans, strict=True):
            # the field only where it shows: beside a side band, a row needs a few tiles
            keys = field.tile_keys(channel, y, across, spans_here)
            rows = min(TILE, height - y0)
            base = y0 * width
            whole = slice(base, base + rows * width)
            original = plane[whole]
            plane[whole] = original.translate(lut((0.0, 0.0)))
            for first, last in spans_here:  # tile columns
                xa, xb = first * TILE, min(last * TILE, width)
                band = bytearray(rows * (xb - xa))
                for r in range(rows):  # column-major: a tile's pixels are one run
                    band[r::rows] = original[r * width + xa : r * width + xb]
                start, key = first, keys[first]
                for k in range(first + 1, last + 1):
                    nxt = keys[k] if k < last else None
                    if nxt == key:
                        continue
                    run = slice((start * TILE - xa) * rows, (min(k * TILE, width) - xa) * rows)
                    band[run] = band[run].translate(lut(key))
                    if nxt is not None:
                        start, key = k, nxt
                for r in range(rows):
                    at = base + r * width
                    plane[at + xa : at + xb] = band[r::rows]
        out[channel::4] = plane


def _span(
    y0: int, rows: int, width: int, areas: Sequence[tuple[int, int, int, int]] | None
) -> list[tuple[int, int]]:
    """The runs of tile columns [first, last) of the band of rows at ``y0`` that meet
    ``areas`` (all of them when there are no areas)."""
    columns = -(-width // TILE)
    if areas is None:
        return [(0, columns)]
    hits = sorted(
        (max(0, x // TILE), min(columns, -(-(x + w) // TILE)))
        for x, y, w, h in areas
        if w > 0 and h > 0 and y < y0 + rows and y + h > y0 and x < width and x + w > 0
    )
    merged: list[tuple[int, int]] = []
    for a, b in hits:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged
