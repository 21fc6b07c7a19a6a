#!/usr/bin/env python3
"""Outpaint images from the command line: ``python3 scripts/outpaint.py --help``.

The command line tool is the ``outpaint_cli`` package (plugin/outpaint_cli/); a pip install
also puts it on PATH as ``flux-outpaint``.
"""

import sys
from pathlib import Path

# Run from a checkout: the packages live under plugin/, and this folder must not shadow them
# (this file is named like the core package).  Loaded as a module, nothing changes.
_PLUGIN = Path(__file__).resolve().parent.parent / "plugin"
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path[0:1] = [str(_PLUGIN / "flux-outpaint"), str(_PLUGIN)]

from outpaint_cli.main import entry  # noqa: E402

if __name__ == "__main__":
    entry()
