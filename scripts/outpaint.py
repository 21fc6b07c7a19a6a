#!/usr/bin/env python3
"""Outpaint images from the command line: ``python3 scripts/outpaint.py --help``.

The command line tool is the ``flux_outpaint_cli`` package; a pip install
also puts it on PATH as ``flux-outpaint``.
"""

from flux_outpaint_cli.main import entry

if __name__ == "__main__":
    entry()
