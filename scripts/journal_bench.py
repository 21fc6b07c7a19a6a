#!/usr/bin/env python3
"""Journal benchmark: a journal of 10 000 requests, ``--recover`` on it, and compaction.

    python scripts/journal_bench.py [--entries N] [--runs R] [--before CHECKOUT]

Builds a data folder whose journal holds N CLI requests (default 10 000), each as the CLI
journals one — a submit with its purpose and plan, then completed, downloaded, placed — except
the newest, which was never written (its result is cached, its input beside it).  Its lines
are written straight into the file, so the journal is as large as a version that never
compacted (8fda900) would have left it: the worst case this version has to read.

Then, R times each (the median is printed):

* ``--recover`` of the newest request as a user runs it (``scripts/outpaint.py``, a new
  process: interpreter start, imports, reading the journal, decoding, composing, writing),
  with and without its id; the same with ``--before``'s CLI (an older checkout) for
  comparison when given;
* reading the journal alone in this process (``Journal.entries``);
* ``Journal.compact`` once (seconds, size before and after), then ``--recover`` again on the
  compacted journal;
* appending one record through the API (lock file, fsync) on the compacted journal.

Figures only, no assertions; the machine is shared, so times are noisy.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from flux_outpaint.journal import COMPACT_STEP_BYTES, Journal
from flux_outpaint.journal_records import CliFile, PlanRecord, State
from flux_outpaint.status import RequestHandle
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
BASE = "https://queue.fal.run/fal-ai/flux-2-pro/requests"


def build(folder: Path, entries: int) -> tuple[str, Path, list[str]]:
    """The input, the cached result of the newest request, and every request's lines (as
    this version writes them); returns the newest id, the data folder and the lines."""
    data = folder / "data"
    (data / "results").mkdir(parents=True)
    rng = np.random.default_rng(5)
    src = folder / "in.png"
    Image.fromarray(rng.integers(0, 255, (36, 48, 3), dtype=np.uint8), "RGB").save(src)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    # One real entry through the API: its lines are the template for the others.
    scratch = Journal(folder / "template.jsonl")
    rid0 = "00000000-0000-4000-8000-000000000000"
    out0 = f"{folder}/out-{rid0}.png"
    purpose = CliFile(str(src), digest, (48, 36), (16, 8), out0, "PNG", 16)
    plan = PlanRecord((64, 44), (16, 8, 48, 36), (94, 64), 1.45, "png", 7829, "high", "png", 0.03)
    root = f"{BASE}/{rid0}"
    scratch.record_submit(
        RequestHandle(rid0, f"{root}/status", root, f"{root}/cancel"), purpose, plan
    )
    scratch.mark(rid0, State.COMPLETED)
    scratch.mark(rid0, State.DOWNLOADED, result_path=f"{data}/results/{rid0}.png")
    scratch.mark(rid0, State.PLACED, output=out0)
    template = scratch.path.read_text().splitlines(keepends=True)
    groups = []
    for n in range(entries):
        rid = f"{n:08x}-0000-4000-8000-000000000000"
        lines = template if n < entries - 1 else template[:3]  # the newest: never written
        groups.append("".join(lines).replace(rid0, rid))
    newest = f"{entries - 1:08x}-0000-4000-8000-000000000000"
    result = rng.integers(0, 255, (64, 94, 3), dtype=np.uint8)
    Image.fromarray(result, "RGB").save(data / "results" / f"{newest}.png")
    return newest, data, groups


def write_all_at_once(journal: Journal, groups: list[str]) -> None:
    """As a version that never compacted (8fda900) leaves it: every line kept."""
    journal.path.write_text("".join(groups))


def grow(journal: Journal, groups: list[str]) -> int:
    """As this version grows it: compacted each time it grows past another
    ``COMPACT_STEP_BYTES`` (the rule ``Journal._append`` follows); returns the compactions."""
    journal.path.write_text("")
    size, compactions = 0, 0
    out = open(journal.path, "a", encoding="utf-8")  # noqa: SIM115 - reopened after each compaction
    try:
        for group in groups:
            for line in group.splitlines(keepends=True):
                out.write(line)
                grown = size + len(line.encode())
                if size // COMPACT_STEP_BYTES != grown // COMPACT_STEP_BYTES:
                    out.close()  # compaction replaces the file: append to the new one
                    grown = journal.compact()[1]
                    compactions += 1
                    out = open(journal.path, "a", encoding="utf-8")  # noqa: SIM115
                size = grown
    finally:
        out.close()
    return compactions


def timed_recover(cli: Path, data: Path, rid: str | None, out: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one ``--recover`` process."""
    env = {
        **os.environ,
        "FLUX_OUTPAINT_DATA_DIR": str(data),
        "FLUX_OUTPAINT_CONFIG_DIR": str(data.parent / "config"),
    }
    env.pop("FAL_KEY", None)
    out.unlink(missing_ok=True)
    args = [sys.executable, str(cli), "--recover", *([rid] if rid else []), "-o", str(out), "-q"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True)
    took = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"--recover failed: {done.stderr.decode(errors='replace')[-400:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return took, cpu


def median(fn, runs: int) -> str:
    """``wall s (cpu s)`` medians of ``runs`` calls (``fn`` returns seconds, or both)."""
    got = [fn() for _ in range(runs)]
    pairs = [g if isinstance(g, tuple) else (g, g) for g in got]
    wall = statistics.median(w for w, _ in pairs)
    cpu = statistics.median(c for _, c in pairs)
    return f"{wall:7.3f} s wall {cpu:7.3f} s CPU"


def report(
    label: str, journal: Journal, cli: Path, rid: str, runs: int, old: Path | None = None
) -> None:
    """``--recover`` timed on the journal as it is now, put back before every run (a recover
    appends, and may compact)."""
    data, out = journal.path.parent, journal.path.parent.parent / "recovered.png"
    raw = journal.path.read_bytes()
    lines = len(raw.splitlines())
    print(f"{label}: {lines} lines, {len(raw) / 1e6:.2f} MB")

    def again(fn: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            journal.path.write_bytes(raw)
            return fn()

        return run

    rows = [
        ("  --recover ID (new process)", lambda: timed_recover(cli, data, rid, out)),
        ("  --recover, the latest (new process)", lambda: timed_recover(cli, data, None, out)),
        ("  Journal.entries() in this process", lambda: _entries_s(journal)),
    ]
    if old is not None:
        rows.append(("  --recover ID, --before's CLI", lambda: timed_recover(old, data, rid, out)))
    for name, fn in rows:
        print(f"{name:42s} {median(again(fn), runs)}  (median of {runs})")
    journal.path.write_bytes(raw)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--entries", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--before", type=Path, help="an older checkout whose CLI to time as well")
    a = p.parse_args(argv)
    cli = ROOT / "scripts" / "outpaint.py"
    bare = median(lambda: _python_start(), a.runs)
    floor = "python3 -c 'import numpy, PIL, httpx'"
    print(f"{floor:42s} {bare}  (the floor of any run)")
    with tempfile.TemporaryDirectory() as tmp:
        rid, data, groups = build(Path(tmp), a.entries)
        journal = Journal(data / "journal.jsonl")
        print(f"{a.entries} CLI requests, the newest never written (its result cached)")
        write_all_at_once(journal, groups)
        old = a.before / "scripts" / "outpaint.py" if a.before is not None else None
        report("as 8fda900 leaves it (never compacted)", journal, cli, rid, a.runs, old)
        t0 = time.perf_counter()
        before, after = journal.compact()
        took = time.perf_counter() - t0
        kept = len(journal.entries())
        print(
            f"  compact() once: {took:.3f} s, {before / 1e6:.2f} MB -> {after / 1e6:.3f} MB, "
            f"{kept} requests kept"
        )
        report("after that compaction", journal, cli, rid, a.runs, old)
        compactions = grow(journal, groups)
        grown = f"as this version grows it ({compactions} compactions)"
        report(grown, journal, cli, rid, a.runs, old)
        t0 = time.perf_counter()
        journal.mark(rid, State.UNPLACED, error="bench")
        print(f"one append through the API (lock file, fsync): {time.perf_counter() - t0:.4f} s")
    return 0


def _python_start() -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import numpy, PIL.Image, httpx"], check=True)
    took = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return took, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _entries_s(journal: Journal) -> float:
    fresh = Journal(journal.path)  # no parse cache
    t0 = time.perf_counter()
    fresh.entries()
    return time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main())
