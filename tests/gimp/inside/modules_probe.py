"""Run by the chroot's python3 (not GIMP), from test_sandbox.py: which modules it has.

Prints JSON: numpy, PIL and httpx must be missing (users' GIMPs may lack them), gi and the
Gimp typelib present.
"""

from __future__ import annotations

import importlib
import json


def main():
    found = {}
    for name in ("numpy", "PIL", "httpx", "gi"):
        try:
            importlib.import_module(name)
            found[name] = True
        except ImportError:
            found[name] = False
    import gi

    gi.require_version("Gimp", "3.0")
    from gi.repository import Gimp

    found["Gimp typelib"] = Gimp.MAJOR_VERSION == 3
    print(json.dumps(found))


if __name__ == "__main__":
    main()
