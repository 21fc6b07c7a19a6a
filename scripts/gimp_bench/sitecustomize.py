"""Step timer for scripts/bench_gimp.py, loaded into the plug-in's own process.

GIMP starts every plug-in call as a new Python process with GIMP's environment; the
benchmark puts this folder on ``PYTHONPATH``, so Python imports this file at start-up in
every process GIMP spawns.  It does something only in flux-outpaint's process and only when
``FLUX_OUTPAINT_BENCH_LOG`` names a file: it wraps the glue's and the core's step functions
by name as their modules load (nothing in the plug-in knows about it, so the same timer
measures any version of the plug-in), and when the outpaint run returns it appends one JSON
line: the wall-clock times at interpreter start, run entry and run exit, each step's own
time (time spent in a nested step counts for that step only, per thread), and the
process's peak resident memory so far.

The steps are a registry of names (``STEPS``, ``DETAIL``, ``RUN``), so a rename in the plug-in
must not drop a step silently: ``tests/test_bench_steps.py`` checks that every registered
name resolves in the current source, and a name that a version of the plug-in does not have
(an older checkout measured for comparison) is listed under ``"missing"`` in the JSON line,
which ``bench_gimp.py`` prints.
"""

from __future__ import annotations

import importlib.abc
import json
import os
import sys
import threading
import time

STARTED = time.time()
LOG = os.environ.get("FLUX_OUTPAINT_BENCH_LOG")
PLUGIN_FILE = "flux-outpaint.py"
RUN = "gimp_glue.procedure:run_outpaint"

# step -> "module:attribute" names (attribute may be Class.method)
STEPS = {
    "read": [
        "gimp_glue.pixels:read_rgba",
        "gimp_glue.pixels:read_pixels",
        "gimp_glue.pixels:read_reference",
    ],
    "scale": [
        "gimp_glue.pixels:resample",
        "gimp_glue.pixels:shrink",
    ],
    "encode": ["gimp_glue.pixels:encode"],
    # the rest of run_job: the request body, the journal, the result cache
    "journal": ["flux_outpaint.pipeline:run_job"],
    # the client's exchanges with the server, waiting included: the server's time
    "network": [
        f"flux_outpaint.queue_client:FalQueueClient.{name}"
        for name in ("upload", "submit", "status", "wait", "result", "download", "cancel")
    ],
    "decode": ["gimp_glue.pixels:decode"],
    # colour matching: the estimate, the correction and its journal note
    "match": ["gimp_glue.procedure:color_matched"],
    # grain match: measuring the noise each side of the seam (adding it happens in "place")
    "grain": ["gimp_glue.grainfill:decide"],
    "place": [
        "gimp_glue.placement:apply",
        "gimp_glue.placement:fill_layer",
    ],
    "mask": [
        "flux_outpaint.framing:Placement.mask",
        "gimp_glue.pixels:write_mask",
        "gimp_glue.placement:add_seam_mask",
    ],
}

# Finer steps, in the JSON only (the printed table folds them into "other").
DETAIL = {
    "x-frame": [
        "flux_outpaint.framing:automatic",
        "flux_outpaint.framing:frame",
        "flux_outpaint.planning:make_plan",
    ],
    "x-network-imports": ["gimp_glue:network"],
    "x-key": ["gimp_glue.session:api_key"],
    "x-wait": ["gimp_glue.worker:wait_quietly"],
    "x-journal": ["gimp_glue.session:journal"],
    "x-pick": ["gimp_glue.source:pick_layer"],
    "x-client": [
        "flux_outpaint.queue_client:FalQueueClient.__init__",
        "flux_outpaint.queue_client:FalQueueClient.close",
    ],
    "x-progress": ["gimp_glue.worker:drive"],
    # room made for the grain on the result before it is enlarged (inside "place")
    "x-grain-add": ["gimp_glue.grainfill:enlarging"],
}

_local = threading.local()
_lock = threading.Lock()
_own: dict[str, float] = {}
_calls: dict[str, int] = {}
_missing: list[str] = []  # registered names this version of the plug-in does not have


def _stack() -> list[float]:
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def _timed(step: str, fn):
    def timed(*args, **kwargs):
        stack = _stack()
        stack.append(0.0)
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            total = time.perf_counter() - t0
            nested = stack.pop()
            if stack:
                stack[-1] += total
            with _lock:
                _own[step] = _own.get(step, 0.0) + total - nested
                _calls[step] = _calls.get(step, 0) + 1

    timed.__wrapped__ = fn
    timed.__name__ = getattr(fn, "__name__", step)
    return timed


def _peak_rss_kb() -> int:
    """VmHWM: the peak since exec.  (getrusage's ru_maxrss survives exec, so in a process
    that GIMP forked it reports GIMP's own size at the fork.)"""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def _recording_run(fn):
    def run(*args, **kwargs):
        entered = time.time()
        _own.clear()
        _calls.clear()
        try:
            return fn(*args, **kwargs)
        finally:
            record = {
                "python_started": STARTED,
                "run_entered": entered,
                "run_exited": time.time(),
                "steps_s": dict(_own),
                "calls": dict(_calls),
                "peak_rss_kb": _peak_rss_kb(),
                "missing": sorted(_missing),
                "python": sys.version.split()[0],
            }
            with open(LOG, "a", encoding="utf-8") as out:
                out.write(json.dumps(record) + "\n")

    return run


def _targets() -> dict[str, list[tuple[str, str]]]:
    """module -> [(attribute path, step)]"""
    out: dict[str, list[tuple[str, str]]] = {}
    for step, names in {**STEPS, **DETAIL}.items():
        for name in names:
            module, attr = name.split(":")
            out.setdefault(module, []).append((attr, step))
    module, attr = RUN.split(":")
    out.setdefault(module, []).append((attr, "run"))
    return out


TARGETS = _targets()


def _patch(module) -> None:
    for attr, step in TARGETS[module.__name__]:
        owner, _, name = attr.rpartition(".")
        holder = module
        for part in filter(None, owner.split(".")):
            holder = getattr(holder, part, None)
        if holder is None or not hasattr(holder, name):
            _missing.append(f"{module.__name__}:{attr}")  # reported, never silently dropped
            continue
        fn = getattr(holder, name)
        setattr(holder, name, _recording_run(fn) if step == "run" else _timed(step, fn))


class _Finder(importlib.abc.MetaPathFinder):
    """Patches a target module right after it executes, before anyone imports from it."""

    def find_spec(self, name, path, target=None):
        if name not in TARGETS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        execute = loader.exec_module

        def exec_module(module):
            execute(module)
            _patch(module)

        loader.exec_module = exec_module
        return spec


def _timed_exit(real_exit):
    """os._exit that first notes when the plug-in let go (after GIMP's own clean-up)."""

    def _exit(status):
        with open(LOG, "a", encoding="utf-8") as out:
            out.write(json.dumps({"exiting": time.time()}) + "\n")
        real_exit(status)

    return _exit


if LOG and sys.argv and os.path.basename(sys.argv[0]) == PLUGIN_FILE:
    sys.meta_path.insert(0, _Finder())
    os._exit = _timed_exit(os._exit)
