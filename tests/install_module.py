"""install.py loaded as a module, once, for the tests that call its functions."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def load_install() -> ModuleType:
    """install.py as ``flux_install`` (it imports install_vendor from the repository root)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    if "flux_install" in sys.modules:
        return sys.modules["flux_install"]
    spec = importlib.util.spec_from_file_location("flux_install", ROOT / "install.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["flux_install"] = module
    spec.loader.exec_module(module)
    return module
