"""One input's plan as JSON, with the reference encoded exactly as a run would send it:
what ``--dry-run`` prints (and ``--json`` carries) without sending anything."""

from __future__ import annotations

from typing import Any

from flux_outpaint import payload

from . import imageio, inputs
from . import photo as ph


def describe(item: inputs.Item) -> dict[str, Any]:
    """The plan as JSON, with the reference encoded exactly as a run would send it."""
    plan = item.plan
    ref_w, ref_h = plan.request_reference
    src = plan.source
    photo = ph.load(
        item.data if item.data is not None else inputs.read_input(item.path, item.name),
        item.name,
        item.path,
    )
    rgba = photo.rgba8(inputs.reference_box(plan, item.origin), plan.request_reference)
    enc = payload.choose_encoding(payload.has_alpha(rgba), ref_w, ref_h)
    size = len(imageio.encode(rgba, ref_w, ref_h, enc))
    return {
        "input": item.name,
        "output": str(item.target),
        "canvas": [src.canvas_width, src.canvas_height],
        "reference": [src.reference.x, src.reference.y, src.reference.width, src.reference.height],
        "expand": {
            "left": src.expansion.left,
            "right": src.expansion.right,
            "top": src.expansion.top,
            "bottom": src.expansion.bottom,
        },
        "request_reference": list(plan.request_reference),
        "request_expand": plan.request_expansion.as_request(),
        "request_output": list(plan.request_output),
        "scale": plan.scale,
        "downscaled": plan.downscaled,
        "encoding": enc.format,
        "payload_bytes": size,
        "transport": payload.choose_transport(size),
        "variations": item.variations,
        "outputs": [str(t) for t in item.targets],
        "cost_usd_estimate": round(plan.cost_usd * item.variations, 6),
    }
