"""scripts/bench_gimp.py still measures: its batch runs in real GIMP 3.0 and 3.2 and the
step timer it loads into the plug-in's process sees every step, colour matching included.

A benchmark that silently stops working is found out only when someone needs its figures;
this runs it on one small image (no figures are asserted, only that they exist)."""

from __future__ import annotations

from argparse import Namespace

from cli_support import photo
from script_modules import script

bench_gimp = script("bench_gimp")


def test_the_benchmark_runs_and_times_each_step(sandbox_name, vendor_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(bench_gimp, "SIZES", {1: ((480, 300), (64, 30, 352, 240))})
    picture = tmp_path / "photo.png"
    photo(352, 240, seed=3).save(picture)
    args = Namespace(sizes=[1], repeat=2, scenarios=["drift"])
    source = bench_gimp.ROOT / "plugin" / "flux-outpaint"
    result = bench_gimp.run_sandbox(sandbox_name, args, source, vendor_dir, picture)
    runs = result["sizes"]["1MP"]
    assert len(runs) == 2 and all(run["error"] is None for run in runs), runs
    for run in runs:
        figures = bench_gimp.figures(run)
        assert figures is not None, run
        steps = run["plugin"]["steps_s"]
        # "match" is colour matching (the drift scenario gives it a cast to take out)
        for step in ("read", "encode", "network", "decode", "match", "place", "mask"):
            assert steps.get(step, 0) > 0, (step, steps)
        assert figures["wall"] >= figures["own"] > 0
