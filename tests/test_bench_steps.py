"""The GIMP benchmark's step registry names functions that exist.

``scripts/gimp_bench/sitecustomize.py`` times the plug-in's steps by wrapping functions it
names as ``module:attribute`` strings; a rename in the plug-in would otherwise drop a step
from the benchmark without a word.  Read from the sources (no GIMP needed).
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "plugin" / "flux-outpaint"


def _timer():
    path = ROOT / "scripts" / "gimp_bench" / "sitecustomize.py"
    spec = importlib.util.spec_from_file_location("gimp_bench_sitecustomize", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # inert outside the plug-in's process
    return module


TIMER = _timer()
NAMES = sorted(
    {name for names in {**TIMER.STEPS, **TIMER.DETAIL}.values() for name in names} | {TIMER.RUN}
)


def _defined(path: Path) -> set[str]:
    """Top-level functions and classes, and ``Class.method`` for their methods."""
    found: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.add(node.name)
        elif isinstance(node, ast.ClassDef):
            found.add(node.name)
            found.update(
                f"{node.name}.{item.name}"
                for item in node.body
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
            )
    return found


def _source(module: str) -> Path:
    parts = module.split(".")
    folder = PLUGIN.joinpath(*parts)
    return folder / "__init__.py" if folder.is_dir() else folder.with_suffix(".py")


@pytest.mark.parametrize("name", NAMES)
def test_every_timed_step_names_a_function_of_the_plugin(name):
    module, attr = name.split(":")
    path = _source(module)
    assert path.is_file(), f"{name}: no module {module} (renamed? update the step registry)"
    assert attr in _defined(path), f"{name}: no {attr} in {module} (update the step registry)"


def test_the_registry_times_the_steps_the_benchmark_prints():
    assert {"read", "scale", "encode", "network", "decode", "match", "place", "mask"} <= set(
        TIMER.STEPS
    )
