"""``bench.py --seam``: the seam the CLI leaves on photos, against the local server's casts.

Colour.  Each photo is grown by ``SEAM_EXPAND`` on every side against the local server with no
drift, its ``drift`` scenario (one cast over the whole canvas) and its ``drift-varying``
scenario (a cast that ramps from corner to corner), colour matching on and off.  Printed per
photo and cast: the seam metric (``flux_outpaint_fal_local.metrics.seam_metric``, 8-bit levels)
at the right and the top seam and over all four, off / on / the no-drift floor, and on/off
and on/floor; for no drift, how much matching changed the new pixels.

Grain.  A grainy photo (a sample photo enlarged, plus luma σ ``GRAIN_LUMA`` and chroma
σ ``GRAIN_CHROMA`` Gaussian grain: smooth structure, sensor-like noise) is widened on the
right against the ``texture`` scenario (the new area carries the reference's texture at the
request's scale, as a real model's does), at a small size (nothing enlarged) and at a camera
size (fal's image enlarged about 2.6 times).  Printed: the band's fine detail (mean |Laplacian|
of luminance in the 64 px just past the seam) over the original's (the 64 px just inside),
grain match on and off.

Moved object.  The same growth against the ``moved-object`` scenario (a bright disc across
the right seam, on top of the drift: content the model moved), matching on and off, and the
drift alone with matching on.  Printed per photo: the seam metric away from the object
(``flux_outpaint_fal_local.metrics.seams_away_from_object``: the right seam beyond two radii of
it, the top seam whole), off / on / drift alone, and the mean change of the band beyond three
radii of it against the drift alone (``band_change_away_from_object``): the correction was not
dragged by the object when that is near 0 and on is near drift alone.

``--seam-images DIR`` writes ``color-match.png`` (the drift-varying corner, off | on) and
``grain-match.png`` (a 100 % crop across the camera-size seam, off | on).

``--seam-before CHECKOUT`` (another checkout of the project, e.g. an older commit in a git
worktree, with its own ``.venv``) runs the camera-size case once more with both casts at once
(``drift-varying`` and ``texture``: colour and grain), by that checkout's CLI and by this one,
and prints the seam metric and the band's fine detail of each; with ``--seam-images`` it also
writes ``seam-camera.png``, a 100 % crop across the seam, before | now.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SEAM_PHOTOS = ("coffee.png", "astronaut.png", "chelsea.png", "rocket.jpg")
SEAM_EXPAND = 96  # every side
SEAM_BLEND = 16
CASTS = (None, "drift", "drift-varying")
# name → (photo size, grown on the right)
GRAIN_SIZES = {"small": ((1200, 800), 240), "camera": ((6000, 4000), 1200)}
GRAIN_LUMA = 3.0
GRAIN_CHROMA = 1.0
STRIP = 64


def _cli(scripts: Path, src: Path, out: Path, base_url: str, tmp: Path, *extra) -> None:
    cmd = [
        sys.executable,
        str(scripts / "outpaint.py"),
        str(src),
        "-o",
        str(out),
        "--seam-blend",
        str(SEAM_BLEND),
        "--base-url",
        base_url,
        "--force",
        *map(str, extra),
    ]
    env = {**os.environ, "FAL_KEY": "bench-key", "FLUX_OUTPAINT_DATA_DIR": str(tmp / "seam-data")}
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=900)


def _grown_all_round(scripts: Path, src: Path, out: Path, base_url: str, tmp: Path, match: bool):
    """``src`` grown by ``SEAM_EXPAND`` on every side, colour matching on or off; the
    output's RGB pixels."""
    import numpy as np
    from PIL import Image

    e = SEAM_EXPAND
    extra = ["--left", e, "--right", e, "--top", e, "--bottom", e]
    if not match:
        extra.append("--no-color-match")
    _cli(scripts, src, out, base_url, tmp, *extra)
    return np.asarray(Image.open(out).convert("RGB"))


def _has_grain_option(scripts: Path) -> bool:
    r = subprocess.run(
        [sys.executable, str(scripts / "outpaint.py"), "--help"], capture_output=True, text=True
    )
    return "--no-grain-match" in r.stdout


def colour(photo_of, scripts: Path, tmp: Path, images: Path | None) -> list[dict]:
    import numpy as np
    from flux_outpaint.geometry import Expansion, Rect
    from flux_outpaint_fal_local import start_server
    from flux_outpaint_fal_local.metrics import seam_metric
    from PIL import Image

    e = SEAM_EXPAND
    rows = []
    for name in SEAM_PHOTOS:
        src = photo_of(name)
        original = np.asarray(Image.open(src).convert("RGB"))
        h, w = original.shape[:2]
        where = Rect(e, e, w, h)
        outs: dict = {}
        for cast in CASTS:
            with start_server(scenarios=[cast] if cast else []) as srv:
                for match in (False, True):
                    out = tmp / f"seam-{name}-{cast}-{match}.png"
                    outs[cast, match] = _grown_all_round(
                        scripts, src, out, srv.base_url, tmp, match
                    )

        def metric(img, sides, original=original, where=where):
            return float(seam_metric(img, original, where, Expansion(**sides)).mean())

        every = {"left": 1, "right": 1, "top": 1, "bottom": 1}
        for cast in CASTS:
            row: dict = {"photo": name, "cast": cast or "none"}
            # the scenario's own cast undone exactly: what no estimate can beat
            exact = outs[cast, False] if cast is None else _exact(outs[cast, False], src, cast)
            for label, sides in (("right", {"right": 1}), ("top", {"top": 1}), ("all", every)):
                row[label] = {
                    "off": metric(outs[cast, False], sides),
                    "on": metric(outs[cast, True], sides),
                    "exact": metric(exact, sides),
                    "floor": metric(outs[None, False], sides),
                }
            band = np.ones((h + 2 * e, w + 2 * e), bool)
            band[e : e + h, e : e + w] = False
            diff = np.abs(outs[cast, True].astype(int) - outs[cast, False].astype(int))
            row["band_change"] = float(diff[band].mean())
            rows.append(row)
        if images is not None and name == SEAM_PHOTOS[0]:
            corner_sheet(outs["drift-varying", False], outs["drift-varying", True], e, images)
    return rows


def _exact(off, src: Path, cast: str):
    """The uncorrected output with the scenario's own cast undone, in fal's sRGB: the CLI
    converts fal's pixels into the photo's colour space, so through that space and back."""
    import numpy as np
    from flux_outpaint_cli import photo as ph
    from flux_outpaint_fal_local.fill import undrifted
    from PIL import Image

    photo = ph.read(src)
    srgb = ph.to_srgb(
        Image.fromarray(off).convert(photo.space.colour), photo.space, photo.colour_profile
    )
    fixed = Image.fromarray(undrifted(np.asarray(srgb), cast != "drift"))
    return np.asarray(ph.from_srgb(fixed, photo.space, photo.colour_profile).convert("RGB"))


def moved(photo_of, scripts: Path, tmp: Path, photos: tuple[str, ...] = SEAM_PHOTOS) -> list[dict]:
    """Per photo, grown by ``SEAM_EXPAND`` on every side: the ``moved-object`` scenario (a
    bright disc across the right seam, on top of the drift) with colour matching on and off,
    and the ``drift`` alone with it on.  The seams are measured away from the object
    (``metrics.seams_away_from_object``), and the band beyond three radii of it against the
    drift alone (``metrics.band_change_away_from_object``): near 0 when the object did not
    drag the correction."""
    import numpy as np
    from flux_outpaint.geometry import Rect
    from flux_outpaint_fal_local import start_server
    from flux_outpaint_fal_local.metrics import (
        band_change_away_from_object,
        seams_away_from_object,
    )
    from PIL import Image

    e = SEAM_EXPAND
    grown = (e, e, e, e)
    rows = []
    for name in photos:
        src = photo_of(name)
        original = np.asarray(Image.open(src).convert("RGB"))
        h, w = original.shape[:2]
        where = Rect(e, e, w, h)
        outs: dict = {}
        for cast, match in (("moved-object", True), ("moved-object", False), ("drift", True)):
            with start_server(scenarios=[cast]) as srv:
                out = tmp / f"moved-{name}-{cast}-{match}.png"
                outs[cast, match] = _grown_all_round(scripts, src, out, srv.base_url, tmp, match)
        figures = {
            label: seams_away_from_object(outs[key], original, where, grown)
            for label, key in (
                ("on", ("moved-object", True)),
                ("off", ("moved-object", False)),
                ("drift", ("drift", True)),
            )
        }
        change = band_change_away_from_object(
            outs["moved-object", True], outs["drift", True], where, grown
        )
        row: dict = {"photo": name}
        for side in ("right", "top"):
            row[side] = {label: figures[label][side] for label in ("off", "on", "drift")}
        row["band_change"] = [float(v) for v in change]
        rows.append(row)
    return rows


def corner_sheet(off, on, e: int, folder: Path) -> Path:
    """The top-left corner of the drift-varying output, matching off | on, each labelled."""
    from PIL import Image, ImageDraw

    w, h = e + 240, e + 200
    return _sheet(
        [(off[:h, :w], "colour match off"), (on[:h, :w], "colour match on (default)")],
        folder / "color-match.png",
        "local server, drift-varying scenario: a cast that ramps across the canvas",
        Image,
        ImageDraw,
    )


def _sheet(parts, out: Path, caption: str, Image, ImageDraw) -> Path:
    gap, label = 8, 22
    w, h = parts[0][0].shape[1], parts[0][0].shape[0]
    sheet = Image.new("RGB", (len(parts) * (w + gap) - gap, h + 2 * label), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (pixels, text) in enumerate(parts):
        sheet.paste(Image.fromarray(pixels), (i * (w + gap), label))
        draw.text((i * (w + gap) + 4, 5), text, fill="black")
    draw.text((4, h + label + 5), caption, fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)
    return out


def grainy(photo_path: Path, size: tuple[int, int], seed: int = 11):
    import numpy as np
    from PIL import Image

    base = Image.open(photo_path).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    values = np.asarray(base).astype(np.float32)
    rng = np.random.default_rng(seed)
    for y0 in range(0, size[1], 512):  # in bands: float noise for 24 MP at once is large
        rows = values[y0 : y0 + 512]
        rows += rng.standard_normal(rows.shape[:2] + (1,), dtype=np.float32) * GRAIN_LUMA
        rows += rng.standard_normal(rows.shape, dtype=np.float32) * GRAIN_CHROMA
    return np.clip(values + 0.5, 0, 255).astype(np.uint8)


def fine_detail(img) -> float:
    import numpy as np

    y = img[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    lap = 4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]
    return float(np.abs(lap).mean())


def grain(photo_of, scripts: Path, tmp: Path, images: Path | None) -> list[dict]:
    import numpy as np
    from flux_outpaint_fal_local import start_server
    from PIL import Image

    option = _has_grain_option(scripts)
    rows = []
    for label, (size, grow) in GRAIN_SIZES.items():
        original = grainy(photo_of(SEAM_PHOTOS[0]), size)
        src = tmp / f"grainy-{label}.png"
        Image.fromarray(original).save(src, compress_level=1)
        w = size[0]
        inside = fine_detail(original[:, w - STRIP :])
        row: dict = {"size": f"{size[0]}×{size[1]} +{grow}", "inside": inside}
        with start_server(scenarios=["texture"]) as srv:
            for match in (False, True):
                out = tmp / f"grain-{label}-{match}.png"
                extra = ["--right", grow]
                if not match and option:
                    extra.append("--no-grain-match")
                _cli(scripts, src, out, srv.base_url, tmp, *extra)
                result = np.asarray(Image.open(out).convert("RGB"))
                row["on" if match else "off"] = fine_detail(result[:, w : w + STRIP]) / inside
                if images is not None and label == "camera":
                    crop = result[1900:2140, w - 160 : w + 160].copy()
                    crop[:6, 158:162] = (255, 255, 255)  # a tick above the seam
                    row["crop_on" if match else "crop_off"] = crop
        if "crop_on" in row:
            from PIL import ImageDraw

            _sheet(
                [
                    (row.pop("crop_off"), "grain match off"),
                    (row.pop("crop_on"), "grain match on (default)"),
                ],
                images / "grain-match.png",  # type: ignore[operator]
                "100 % crop, seam at the tick: original left, band right. 6000x4000 grainy "
                "photo + 1200 px; local server, texture scenario",
                Image,
                ImageDraw,
            )
        rows.append(row)
    return rows


def camera(photo_of, scripts: Path, tmp: Path, images: Path | None, before: Path) -> dict:
    """The camera-size photo against a drifting, textured fill: ``before``'s CLI and this
    one's, default options (colour and grain match as each version has them)."""
    import numpy as np
    from flux_outpaint.geometry import Expansion, Rect
    from flux_outpaint_fal_local import start_server
    from flux_outpaint_fal_local.metrics import seam_metric
    from PIL import Image

    size, grow = GRAIN_SIZES["camera"]
    original = grainy(photo_of(SEAM_PHOTOS[0]), size)
    src = tmp / "grainy-camera-both.png"
    Image.fromarray(original).save(src, compress_level=1)
    w, h = size
    inside = fine_detail(original[:, w - STRIP :])
    python = before / ".venv" / "bin" / "python"
    label = (
        subprocess.run(
            ["git", "-C", str(before), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        or before.name
    )
    row: dict = {"size": f"{w}×{h} +{grow}", "label": label}
    crops = []
    with start_server(scenarios=["drift-varying", "texture"]) as srv:
        for name, where in (("before", before / "scripts"), ("now", scripts)):
            out = tmp / f"camera-{name}.png"
            env_python = str(python) if name == "before" and python.exists() else sys.executable
            cmd = [env_python, str(where / "outpaint.py"), str(src), "-o", str(out)]
            cmd += ["--seam-blend", str(SEAM_BLEND), "--base-url", srv.base_url, "--force"]
            cmd += ["--right", str(grow)]
            env = {**os.environ, "FAL_KEY": "bench-key"}
            env["FLUX_OUTPAINT_DATA_DIR"] = str(tmp / f"camera-data-{name}")
            subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=900)
            result = np.asarray(Image.open(out).convert("RGB"))
            seam = seam_metric(result, original, Rect(0, 0, w, h), Expansion(right=1))
            row[name] = {
                "seam": float(seam.mean()),
                "detail": fine_detail(result[:, w : w + STRIP]) / inside,
            }
            crop = result[1900:2140, w - 160 : w + 160].copy()
            crop[:6, 158:162] = (255, 255, 255)  # a tick above the seam
            crops.append((crop, f"{label if name == 'before' else 'now'}"))
    if images is not None:
        from PIL import ImageDraw

        _sheet(
            crops,
            images / "seam-camera.png",
            "100 % crop, seam at the tick: original left, band right. 6000x4000 grainy photo "
            "+ 1200 px; local server, drift-varying + texture scenarios",
            Image,
            ImageDraw,
        )
    return row


def print_camera(row: dict) -> None:
    print(
        f"camera size {row['size']}, drift-varying + texture, default options: "
        "right seam metric / band fine detail over the original's"
    )
    print("| version | seam | fine detail |")
    print("|---|---|---|")
    for name in ("before", "now"):
        label = row["label"] if name == "before" else "now"
        print(f"| {label} | {row[name]['seam']:.2f} | {row[name]['detail']:.2f} |")


def print_colour(rows: list[dict]) -> None:
    print(
        "seam metric (8-bit levels: |step| across the seam, 16-px segment means, "
        "flux_outpaint_fal_local.metrics); floor = no drift, matching off; exact = the "
        "scenario's own cast undone exactly (its blur, clipping and JPEG left: the best any "
        "correction could do)"
    )
    print(
        "| photo | cast | right off / on / exact / floor | top off / on / exact / floor "
        "| all four off / on / exact / floor | on/off (right, top) | on/floor (right, top) "
        "| exact/floor (right, top) | new pixels changed |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        cells = [
            f"{r[k]['off']:.2f} / {r[k]['on']:.2f} / {r[k]['exact']:.2f} / {r[k]['floor']:.2f}"
            for k in ("right", "top", "all")
        ]

        def ratio(a: str, b: str, r: dict = r) -> str:
            return " ".join(f"{r[k][a] / max(r[k][b], 1e-9):.2f}" for k in ("right", "top"))

        print(
            f"| {r['photo']} | {r['cast']} | {' | '.join(cells)} | {ratio('on', 'off')} "
            f"| {ratio('on', 'floor')} | {ratio('exact', 'floor')} | {r['band_change']:.2f} |"
        )


def print_grain(rows: list[dict]) -> None:
    print("band fine detail / original's (mean |Laplacian| of luma, 64 px each side of the seam)")
    print("| photo | original | grain match off | grain match on |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']} | {r['inside']:.2f} | {r['off']:.2f} | {r['on']:.2f} |")


def print_moved(rows: list[dict]) -> None:
    print(
        "moved object (a bright disc across the right seam, on the drift): seam metric away "
        "from it (right: the runs beyond two radii; top: all); drift alone = the drift "
        "scenario, matching on; band change = mean new pixels minus the drift alone's, "
        "beyond three radii of the object (R, G, B)"
    )
    print(
        "| photo | right off / on / drift alone | top off / on / drift alone | on/off (right, "
        "top) | on − drift alone (right, top) | band change vs drift alone |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        cells = [
            f"{r[k]['off']:.2f} / {r[k]['on']:.2f} / {r[k]['drift']:.2f}" for k in ("right", "top")
        ]
        ratio = " ".join(f"{r[k]['on'] / max(r[k]['off'], 1e-9):.2f}" for k in ("right", "top"))
        excess = " ".join(f"{r[k]['on'] - r[k]['drift']:+.2f}" for k in ("right", "top"))
        change = " ".join(f"{v:+.2f}" for v in r["band_change"])
        print(f"| {r['photo']} | {' | '.join(cells)} | {ratio} | {excess} | {change} |")
