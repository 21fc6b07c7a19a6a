#!/usr/bin/env python3
"""Run the local fal-compatible server: ``python3 scripts/fal_local.py --help``.

The server is the ``fal_local`` package (plugin/fal_local/).
"""

import sys
from pathlib import Path

# Run from a checkout: the packages live under plugin/, and this folder must not shadow them
# (this file is named like the package it starts).  Loaded as a module, nothing changes.
_PLUGIN = Path(__file__).resolve().parent.parent / "plugin"
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path[0:1] = [str(_PLUGIN / "flux-outpaint"), str(_PLUGIN)]

from fal_local.server import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
