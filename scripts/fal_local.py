#!/usr/bin/env python3
"""Run the local fal-compatible server: ``python3 scripts/fal_local.py --help``.

The server is the ``flux_outpaint_fal_local`` package (plugin/flux_outpaint_fal_local/).
"""

import sys

from flux_outpaint_fal_local.server import main

if __name__ == "__main__":
    sys.exit(main())
