"""Entry scripts loaded as modules, once each, for the tests that call their functions.

``install.py`` (at the repository root) and the tools in ``scripts/`` are programs, not
packages: they are loaded from their files here instead of putting their folders on the
import path.  Each is registered in ``sys.modules`` under its own name, so a later
``import gimp_sandbox`` anywhere gets the same module.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str, path: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as the module ``name``."""
    return _load(name, ROOT / "scripts" / f"{name}.py")


def load_install() -> ModuleType:
    """install.py as ``flux_install`` (it imports install_vendor from the repository root)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return _load("flux_install", ROOT / "install.py")
