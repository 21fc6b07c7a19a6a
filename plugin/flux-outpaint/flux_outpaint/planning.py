"""What to ask fal for, given where the new pixels go, within fal's limits.

Limits (fal documents 0–2048 per side; the rest is BFL's outpainting API, which fal serves):
each ``expand_*`` 0..2048 with at least one > 0, the output canvas ≥ 64 px per side and
≤ 4,194,304 px (4 MP).

When the full-resolution request would break a limit, the request is resampled by one factor
``k`` (request pixels per canvas pixel; < 1 for big canvases, > 1 for tiny ones):

* the reference is sent at ``rw = max(1, round(w·k))`` × ``rh = max(1, round(h·k))``; the
  per-axis factors become ``kx = rw / w`` and ``ky = rh / h``;
* each expansion is ``ceil(side·kx)`` (or ``·ky``), rounded *up* so that the returned image,
  scaled back by ``1/kx`` × ``1/ky``, always covers the whole canvas (never a transparent
  sliver at an edge);
* the returned image lands on the canvas at ``placement``: its origin is
  ``round(left − expand_left / kx)`` (≤ 0) and its size ``round(out_w / kx)``; the reference
  region then falls on the original to within half a canvas pixel, and the seam mask hides
  even that;
* ``k`` starts from the binding limit and is nudged down (or up) by ``_NUDGE`` until the
  rounded sizes satisfy every limit; a canvas that cannot satisfy them at any scale (e.g.
  40000×64) is refused.

The original pixels are never resampled in the output: the result is composited under the
full-resolution original, so only the new band is upscaled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import InputError
from .geometry import Expansion, Rect, Source
from .i18n import _, ngettext

__all__ = [
    "MAX_CANVAS_PIXELS",
    "MAX_EXPAND",
    "MIN_CANVAS_SIDE",
    "MEGAPIXEL",
    "Plan",
    "estimate_cost_usd",
    "make_plan",
]

MAX_EXPAND = 2048  # fal's range for each expand_* value
MIN_CANVAS_SIDE = 64
MAX_CANVAS_PIXELS = 4_194_304
MEGAPIXEL = 1024 * 1024  # fal bills 1 MP as 1024², rounded up
PRICE_FIRST_MP_USD = 0.03
PRICE_EXTRA_MP_USD = 0.015
# Takes of one outpaint (each a request, each billed); here rather than in ``variations`` so the
# plug-in can register and check the argument without importing the network half.
MAX_VARIATIONS = 4
_NUDGE = 0.999
_MAX_NUDGES = 20_000


@dataclass(frozen=True)
class Plan:
    source: Source
    scale: float  # request pixels per canvas pixel (1.0 = no resampling)
    request_reference: tuple[int, int]
    request_expansion: Expansion
    request_output: tuple[int, int]
    placement: Rect  # where the returned image lands on the full canvas
    cost_usd: float  # an estimate from fal's published price
    downscaled: bool

    @property
    def resampled(self) -> bool:
        return self.scale != 1.0

    def describe(
        self, grows_to: tuple[int, int] | None = None, variations: int = 1
    ) -> tuple[str, str]:
        """What will be asked of fal, and what it will cost: two lines for people.

        ``grows_to``: the canvas size after growing, when the output area does not fit it;
        ``variations``: how many requests (takes) are sent, each billed.
        """
        src = self.source
        ow, oh = self.request_output
        text = _("Output {width}×{height} ({sides})").format(
            width=src.canvas_width, height=src.canvas_height, sides=src.expansion.describe()
        )
        if grows_to is not None:
            text += _("; the canvas grows to {width}×{height}").format(
                width=grows_to[0], height=grows_to[1]
            )
        if self.resampled:
            sent = (
                _("; sent downscaled to {width}×{height} ({scale}), the original stays full size")
                if self.downscaled
                else _(
                    "; sent upscaled to {width}×{height} ({scale}), the original stays full size"
                )
            )
            text += sent.format(width=ow, height=oh, scale=f"{self.scale:.0%}")
        return text, cost_line(self.cost_usd, variations)


def cost_line(each_usd: float, variations: int = 1) -> str:
    """The estimate people read before they pay: the total, and each take's share."""
    total = usd(each_usd * variations)
    if variations == 1:
        return _("Estimated cost (fal's price list): about {cost}").format(cost=total)
    return ngettext(
        "Estimated cost: about {cost} for {count} variation ({each} each)",
        "Estimated cost: about {cost} for {count} variations ({each} each)",
        variations,
    ).format(cost=total, count=variations, each=usd(each_usd))


def usd(amount: float) -> str:
    """An amount in US dollars, to the tenth of a cent as fal's prices go."""
    return _("${amount}").format(amount=f"{amount:.3f}")


def estimate_cost_usd(width: int, height: int) -> float:
    """$0.03 for the first megapixel of output + $0.015 per extra one (1 MP = 1024², ceil)."""
    megapixels = max(1, math.ceil(width * height / MEGAPIXEL))
    return round(PRICE_FIRST_MP_USD + PRICE_EXTRA_MP_USD * (megapixels - 1), 6)


def _fits(out_w: int, out_h: int, exp: Expansion) -> int:
    """0 when within limits, -1 when too small (scale up), +1 when too big (scale down)."""
    if exp.largest > MAX_EXPAND or out_w * out_h > MAX_CANVAS_PIXELS:
        return 1
    if min(out_w, out_h) < MIN_CANVAS_SIDE:
        return -1
    return 0


def _sizes(source: Source, k: float) -> tuple[int, int, Expansion]:
    ref, exp = source.reference, source.expansion
    rw, rh = max(1, round(ref.width * k)), max(1, round(ref.height * k))
    kx, ky = rw / ref.width, rh / ref.height

    # ceil with a small epsilon: 100·0.5 must stay 50, not become 51 through float noise.
    def up(v: float) -> int:
        return math.ceil(v - 1e-9)

    scaled = Expansion(up(exp.left * kx), up(exp.right * kx), up(exp.top * ky), up(exp.bottom * ky))
    return rw, rh, scaled


def _too_large(source: Source) -> InputError:
    return InputError(
        _(
            "The output {width}×{height} cannot fit fal's limits (≤ {max_expand} px per side "
            "added, ≥ {min_side} px per side, ≤ 4 MP) at any scale; make the expansion less "
            "lopsided"
        ).format(
            width=source.canvas_width,
            height=source.canvas_height,
            max_expand=MAX_EXPAND,
            min_side=MIN_CANVAS_SIDE,
        )
    )


def make_plan(source: Source) -> Plan:
    exp = source.expansion
    if exp.is_zero:
        raise InputError(
            _(
                "Nothing to expand: enlarge the canvas (Image ▸ Canvas Size) or give at least "
                "one side a size"
            )
        )
    ref = source.reference
    cw, ch = source.canvas_width, source.canvas_height
    k = 1.0
    state = _fits(cw, ch, exp)
    if state > 0:
        k = min(1.0, math.sqrt(MAX_CANVAS_PIXELS / (cw * ch)), MAX_EXPAND / exp.largest)
    elif state < 0:
        k = MIN_CANVAS_SIDE / min(cw, ch)
    rw, rh, rexp = _sizes(source, k)
    first = None
    for _nudge in range(_MAX_NUDGES):
        out_w, out_h = rexp.total_width(rw), rexp.total_height(rh)
        state = _fits(out_w, out_h, rexp)
        if state == 0:
            break
        if first is None:
            first = state
        elif state != first:
            raise _too_large(source)  # overshot both ways: no scale satisfies all limits
        k = k * _NUDGE if state > 0 else k / _NUDGE
        rw, rh, rexp = _sizes(source, k)
    else:
        raise _too_large(source)
    if rexp.is_zero:
        raise _too_large(source)
    if (rw, rh) == (ref.width, ref.height):
        k = 1.0
        placement = Rect(0, 0, cw, ch)
    else:
        kx, ky = rw / ref.width, rh / ref.height
        x0 = round(ref.x - rexp.left / kx)
        y0 = round(ref.y - rexp.top / ky)
        # Rounding both ends could leave the last canvas column uncovered: never allow it.
        width = max(round(out_w / kx), cw - x0)
        height = max(round(out_h / ky), ch - y0)
        placement = Rect(x0, y0, width, height)
    return Plan(
        source=source,
        scale=k,
        request_reference=(rw, rh),
        request_expansion=rexp,
        request_output=(out_w, out_h),
        placement=placement,
        cost_usd=estimate_cost_usd(out_w, out_h),
        downscaled=k < 1.0,
    )
