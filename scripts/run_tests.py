#!/usr/bin/env python3
"""The test command: python3 scripts/run_tests.py [--gimp] [pytest args...]

Creates ``.venv`` (once) with the project's test dependencies, runs ruff (lint and format)
and strict mypy (every package we own), then pytest in it.
``--gimp`` (or FLUX_OUTPAINT_GIMP_TESTS=1) also provisions the Debian chroots with
GIMP 3.0 and 3.2 (cached outside the repo) and runs the real-GIMP tests.

Works on a fresh Debian machine with only python3: where the interpreter lacks ``venv``
/``ensurepip`` (Debian splits them out) and we are root, it installs python3-venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("FLUX_OUTPAINT_VENV", ROOT / ".venv"))
STAMP = VENV / ".deps-installed"
# Run before any test, cheapest first: lint, formatting, and strict types on every package.
CHECKS = (
    ("ruff check", ["ruff", "check", "."]),
    ("ruff format --check", ["ruff", "format", "--check", "."]),
    ("mypy (strict, every package)", ["mypy"]),
)
# pytest workers (pytest-xdist).  The real-GIMP tests form one group that runs on one worker,
# in order, as they would alone; everything else is spread over the workers.
# FLUX_OUTPAINT_TEST_WORKERS=0 runs everything in this process.
WORKERS_ENV = "FLUX_OUTPAINT_TEST_WORKERS"
DEFAULT_WORKERS = 2


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _can_make_venv() -> bool:
    probe = subprocess.run([sys.executable, "-c", "import venv, ensurepip"], capture_output=True)
    return probe.returncode == 0


def _install_venv_support() -> None:
    if os.name == "nt" or os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit(
            "This Python cannot create virtual environments: "
            "install python3-venv (Debian: sudo apt-get install python3-venv) and retry."
        )
    ver = f"python3.{sys.version_info.minor}-venv"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    pkgs = ["python3-venv"]
    if subprocess.run(["apt-cache", "show", ver], capture_output=True).returncode == 0:
        pkgs.append(ver)
    subprocess.run(["apt-get", "install", "-y", "-q", *pkgs], check=True, env=env)


def ensure_venv() -> Path:
    py = _venv_python()
    deps_key = (ROOT / "pyproject.toml").read_bytes()
    if py.exists() and STAMP.exists() and STAMP.read_bytes() == deps_key:
        return py
    if not py.exists():
        if not _can_make_venv():
            _install_venv_support()
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(py), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "install", "-e", f"{ROOT}[test]"], check=True)
    STAMP.write_bytes(deps_key)
    return py


def main(argv: list[str]) -> int:
    gimp = os.environ.get("FLUX_OUTPAINT_GIMP_TESTS") == "1"
    if "--gimp" in argv:
        argv = [a for a in argv if a != "--gimp"]
        gimp = True
    py = ensure_venv()
    env = _with_bytecode_cache(dict(os.environ))
    for name, check in CHECKS:
        done = subprocess.run([str(py), "-m", *check], cwd=ROOT)
        if done.returncode != 0:
            print(f"{name} failed", file=sys.stderr)
            return done.returncode
    if gimp:
        env["FLUX_OUTPAINT_GIMP_TESTS"] = "1"
        sandbox = ROOT / "scripts" / "gimp_sandbox.py"
        subprocess.run([sys.executable, str(sandbox), "ensure", "trixie", "forky"], check=True)
    return subprocess.run(
        [str(py), "-m", "pytest", *_workers(argv), *argv], cwd=ROOT, env=env
    ).returncode


def _with_bytecode_cache(env: dict[str, str]) -> dict[str, str]:
    """Compiled modules (and pytest's assertion-rewritten tests) kept in the venv between
    runs, never beside the sources.  Without a cache, PYTHONDONTWRITEBYTECODE makes every run
    compile the project again in every pytest worker and every CLI subprocess."""
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(VENV / "pycache"))
    return env


def _workers(argv: list[str]) -> list[str]:
    """xdist arguments, unless the command line chose its own (-n, -p no:xdist, --pdb)."""
    if any(a.startswith(("-n", "--numprocesses", "--pdb")) or a == "no:xdist" for a in argv):
        return []
    try:
        count = int(os.environ.get(WORKERS_ENV, DEFAULT_WORKERS))
    except ValueError:
        count = DEFAULT_WORKERS
    return ["-n", str(count), "--dist", "loadgroup"] if count > 1 else []


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
