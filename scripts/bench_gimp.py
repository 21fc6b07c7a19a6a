#!/usr/bin/env python3
"""The plug-in in real GIMP 3.0 and 3.2: step times, its own share of the wall, peak memory.

    python scripts/bench_gimp.py [--sandboxes trixie,forky] [--sizes 4,16,35] [--repeat 3]
                                 [--scenario drift]
                                 [--plugin-ref GIT_REF | --plugin-source DIR] [--json FILE]

Runs the installed plug-in through the PDB in the Debian chroots of the real-GIMP tests
(trixie: GIMP 3.0, forky: GIMP 3.2) against the local fal server on loopback, whose model
takes 0.5 s.  Sizes (canvas, layer centred on it; the layer is a photo plus a little seeded
grain):

* 4 MP:  2364×1773 canvas, 1892×1419 layer (sent at full size);
* 16 MP: 4729×3546 canvas, 3785×2838 layer (sent at 0.5);
* 35 MP: 7200×4800 canvas, 6000×4000 layer, a 24 MP camera frame (sent at ~0.35).

Each size is called ``--repeat`` times in one GIMP session; every figure printed is the
smallest of those runs (the machine is shared, so the minimum is the least disturbed).

Where the time goes is measured inside the plug-in's own process: ``gimp_bench/sitecustomize``
rides in on ``PYTHONPATH`` and times the plug-in's step functions by name, so any version of
the plug-in can be measured unchanged (``--plugin-ref`` installs the plug-in folder as it was
at a git commit).  Columns:

* start: from the PDB call to the plug-in's run function (process, imports, GIMP's hand-over);
* read, scale: the reference out of GIMP and down to the request's size;
* encode: PNG/JPEG of the reference (worker thread);
* journal: the rest of ``run_job`` (request body, journal entries, the result's cache file);
* network: the queue client's exchanges with the server, waiting included: the server's time;
* decode: the returned image into RGBA bytes;
* match: colour matching (estimate, correction, journal note); with ``--scenario drift`` the
  server casts its picture, so the correction is applied, not only estimated;
* grain: measuring the noise each side of the seam for grain match (where the result is
  enlarged; the grain itself is composited while enlarging, inside "place");
* place: the result layer, minus mask: its mask;
* end: GIMP's own time from the plug-in process letting go to the call's return;
* other: the rest of the wall (planning, the waiting loop, GIMP calls between the steps);
* wall: the PDB call as the caller sees it; own: wall − network, the plug-in's own share;
* RSS: the plug-in process's peak resident memory.

Prints tables; writes all runs as JSON with ``--json``.  Asserts nothing.

``--sharpness`` measures pictures instead of time (``gimp_bench/sharpness.py``): a mosaic
of photographs at their own resolution, standing for what fal returns, enlarged onto the
35 MP and 16 MP placements by GIMP's Cubic (the plug-in before), GIMP's Linear and the
plug-in's own enlarger (now); and a 24 MP photograph with grain shrunk to the request by
GdkPixbuf's HYPER (before) and the plug-in's own shrink (now).  Printed per case: the
gradient energy (mean squared difference of neighbouring pixels) of the seam band relative
to Cubic's, and how far each picture is from the other (PSNR, mean absolute difference);
for shrinking, each against an exact area average (Pillow's BOX).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent

IN_GIMP = HERE / "gimp_bench"
KEY = "bench-key-not-secret"
MODEL_SECONDS = 0.5
STEPS = (
    "start",
    "read",
    "scale",
    "encode",
    "journal",
    "network",
    "decode",
    "match",
    "grain",
    "place",
    "mask",
    "end",
    "other",
)
SIZES = {
    4: ((2364, 1773), (236, 177, 1892, 1419)),
    16: ((4729, 3546), (472, 354, 3785, 2838)),
    35: ((7200, 4800), (600, 400, 6000, 4000)),
}
NAMES = {"trixie": "GIMP 3.0", "forky": "GIMP 3.2"}


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench", HERE / "bench.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def plugin_at(ref: str, into: Path) -> Path:
    """plugin/flux-outpaint as it was at git ``ref``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "plugin/flux-outpaint"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "plugin" / "flux-outpaint"


def batch_in(session, name: str) -> str:
    """gimp_bench/``name`` copied in beside the session's runner; its name for run_batch."""
    module = "bench_" + Path(name).stem
    inside = session.host_dir / "inside"
    session.inside()
    shutil.copyfile(IN_GIMP / name, inside / f"{module}.py")
    return module


def run_sandbox(name: str, args, source: Path, vendor: Path, photo: Path) -> dict:
    import flux_outpaint_fal_local
    from gimp_session import GimpSession  # beside this script

    session = GimpSession(name, vendor=lambda: vendor)
    try:
        session.install_plugin(source)
        timer = session.copy_in(IN_GIMP, "gimp_bench")
        log = f"{session.chroot_dir}/steps.jsonl"
        config = {
            "photo": session.copy_in(photo),
            "log": log,
            "repeat": args.repeat,
            "sizes": [
                {"name": f"{mp}MP", "canvas": list(SIZES[mp][0]), "layer": list(SIZES[mp][1])}
                for mp in args.sizes
            ],
        }
        (session.host_dir / "bench-config.json").write_text(json.dumps(config))
        server = flux_outpaint_fal_local.start_server(
            keys=[KEY], run_seconds=MODEL_SECONDS, scenarios=args.scenarios
        )
        try:
            env = {
                "FAL_QUEUE_URL": server.base_url,
                "FAL_KEY": KEY,
                "PYTHONPATH": timer,
                "FLUX_OUTPAINT_BENCH_LOG": log,
            }
            result = session.run_batch(batch_in(session, "batch.py"), env=env, timeout=1800)
        finally:
            server.stop()
        report = result.check()
        return {"gimp": session.gimp_version, "python": session.python_version, "sizes": report}
    finally:
        session.close()


def figures(run: dict) -> dict | None:
    """One call's figures in seconds (None if it failed or the timer saw nothing)."""
    step = run.get("plugin")
    if run.get("error") or not step:
        return None
    own = step["steps_s"]
    wall = run["returned"] - run["called"]
    out = {"start": step["run_entered"] - run["called"]}
    for name in STEPS[1:-2]:
        out[name] = own.get(name, 0.0)
    out["end"] = run["returned"] - step.get("exiting", step["run_exited"])
    out["other"] = wall - sum(out.values())
    out["wall"] = wall
    out["own"] = wall - out["network"]
    out["rss_mb"] = step["peak_rss_kb"] / 1024
    return out


def missing_steps(run: dict) -> list[str]:
    """The registered step names the step timer did not find in this run's plug-in."""
    return list((run.get("plugin") or {}).get("missing", []))


def best(runs: list[dict]) -> dict | None:
    measured = [f for f in map(figures, runs) if f is not None]
    if not measured:
        return None
    return {key: min(f[key] for f in measured) for key in measured[0]} | {"n": len(measured)}


def pooled(files: list[Path]) -> dict:
    """Several --json files as one result: every run of a sandbox and size together."""
    out: dict[str, dict] = {}
    for path in files:
        for name, data in json.loads(path.read_text()).items():
            into = out.setdefault(name, {**data, "sizes": {}})
            for size, runs in data["sizes"].items():
                into["sizes"].setdefault(size, []).extend(runs)
    return out


def print_tables(results: dict, sizes: list[int]) -> None:
    for name, data in results.items():
        print(
            f"\n{NAMES.get(name, name)} ({data['gimp']}, Python {data['python']}): seconds, "
            f"best of each figure over the runs; own = wall − network"
        )
        head = ["canvas", *STEPS, "wall", "own", "RSS MB", "runs"]
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for mp in sizes:
            runs = data["sizes"].get(f"{mp}MP", [])
            fig = best(runs)
            if fig is None:
                errors = {r.get("error") for r in runs}
                print(f"| {mp} MP | failed: {errors} |")
                continue
            cells = [f"{fig[s]:.2f}" for s in (*STEPS, "wall", "own")]
            print(f"| {mp} MP | " + " | ".join(cells) + f" | {fig['rss_mb']:.0f} | {fig['n']} |")
        missing = sorted(
            {m for runs in data["sizes"].values() for r in runs for m in missing_steps(r)}
        )
        if missing:
            print(f"NOT TIMED (no such function in this plug-in): {', '.join(missing)}")


SHARPNESS_PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png")
SHARPNESS = {
    "enlarge": [
        # fal's output, the placement rectangle, the band compared (the top one, layer coords)
        {"name": "35MP", "result": [2506, 1672], "rect": [7201, 4805], "band": [0, 0, 7201, 418]},
        {"name": "16MP", "result": [2363, 1772], "rect": [4730, 3546], "band": [0, 0, 4730, 370]},
    ],
    "shrink": {"layer": [6000, 4000], "size": [2088, 1392]},
}


def _raw(folder: Path, name: str, width: int, height: int):
    import numpy as np

    data = np.fromfile(folder / f"{name}.raw", np.uint8)
    return data.reshape(height, width, 4)[..., :3].astype(np.float64)


def _compare(a, b) -> tuple[float, float]:
    """(PSNR dB, mean absolute difference) of two pictures."""
    import numpy as np

    mse = float(((a - b) ** 2).mean())
    psnr = float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)
    return psnr, float(np.abs(a - b).mean())


def _gradient_energy(a) -> float:
    import numpy as np

    return float((np.diff(a, axis=1)[:-1] ** 2 + np.diff(a, axis=0)[:, :-1] ** 2).mean())


def run_sharpness(name: str, source: Path, vendor: Path, photos: list[Path]) -> None:
    import numpy as np
    from gimp_session import GimpSession  # beside this script
    from PIL import Image

    session = GimpSession(name, vendor=lambda: vendor)
    try:
        session.install_plugin(source)
        config = {**SHARPNESS, "photos": [session.copy_in(p) for p in photos]}
        (session.host_dir / "sharpness.json").write_text(json.dumps(config))
        report = session.run_batch(batch_in(session, "sharpness.py"), timeout=1800).check()
        folder = session.host_dir
        print(f"\n{NAMES.get(name, name)} ({session.gimp_version}): the seam band enlarged")
        print(
            "| case | method | seconds | gradient energy vs Cubic | PSNR vs Cubic | mean abs diff |"
        )
        print("|---|---|---|---|---|---|")
        for case in SHARPNESS["enlarge"]:
            _, _, bw, bh = case["band"]
            edge = (slice(8, -8), slice(8, -8))  # picture borders are handled differently
            pics = {
                m: _raw(folder, f"{case['name']}-{m}", bw, bh)[edge]
                for m in ("cubic", "linear", "ours")
            }
            base = _gradient_energy(pics["cubic"])
            for method, pic in pics.items():
                psnr, mad = _compare(pic, pics["cubic"])
                seconds = report["enlarge"][case["name"]]["seconds"][method]
                print(
                    f"| {case['name']} | {method} | {seconds:.2f} | "
                    f"{_gradient_energy(pic) / base:.3f} | {psnr:.1f} dB | {mad:.2f} |"
                )
        shrink = SHARPNESS["shrink"]
        (lw, lh), (sw, sh) = shrink["layer"], shrink["size"]
        src = np.fromfile(folder / "shrink-source.raw", np.uint8).reshape(lh, lw, 4)
        box = Image.fromarray(src[..., :3].copy()).resize((sw, sh), Image.Resampling.BOX)
        exact = np.asarray(box).astype(np.float64)
        print(f"\n{NAMES.get(name, name)}: the 24 MP reference shrunk to {sw}×{sh}")
        print(
            "| method | seconds | PSNR vs area average | mean abs diff | gradient energy vs HYPER |"
        )
        print("|---|---|---|---|---|")
        hyper = _raw(folder, "shrink-hyper", sw, sh)
        for method in ("hyper", "ours"):
            pic = _raw(folder, f"shrink-{method}", sw, sh)
            psnr, mad = _compare(pic, exact)
            seconds = report["shrink"]["seconds"][method]
            ratio = _gradient_energy(pic) / _gradient_energy(hyper)
            print(f"| {method} | {seconds:.2f} | {psnr:.1f} dB | {mad:.2f} | {ratio:.3f} |")
    finally:
        session.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sandboxes", default="trixie,forky")
    p.add_argument("--sizes", default="4,16,35")
    p.add_argument("--repeat", type=int, default=3)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--plugin-ref", help="measure plugin/flux-outpaint as at this commit")
    where.add_argument("--plugin-source", type=Path, help="measure this plug-in folder")
    p.add_argument("--json", type=Path, help="write every run here")
    p.add_argument(
        "--scenario",
        dest="scenarios",
        action="append",
        default=[],
        help="a local server scenario (e.g. drift, for colour matching); repeatable",
    )
    p.add_argument("--sharpness", action="store_true", help="measure pictures, not time")
    p.add_argument(
        "--tables-from",
        type=Path,
        nargs="+",
        metavar="JSON",
        help="print the tables of earlier --json files, their runs pooled (no GIMP run)",
    )
    args = p.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",")]
    if args.tables_from:
        print_tables(pooled(args.tables_from), args.sizes)
        return 0
    bench = _bench_module()
    from gimp_session import build_vendor  # beside this script

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-gimp-") as tmp:
        work = Path(tmp)
        source = args.plugin_source or ROOT / "plugin" / "flux-outpaint"
        if args.plugin_ref:
            source = plugin_at(args.plugin_ref, work)
        vendor = build_vendor(work / "vendor")
        if args.sharpness:
            photos = [bench.photo(p, bench.CACHE) for p in SHARPNESS_PHOTOS]
            for name in args.sandboxes.split(","):
                run_sharpness(name, source, vendor, photos)
            return 0
        photo = bench.photo("coffee.png", bench.CACHE)
        for name in args.sandboxes.split(","):
            results[name] = run_sandbox(name, args, source, vendor, photo)
            print_tables({name: results[name]}, args.sizes)
    if args.json:
        with contextlib.suppress(FileExistsError):
            args.json.parent.mkdir(parents=True)
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
