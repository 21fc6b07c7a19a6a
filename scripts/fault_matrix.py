#!/usr/bin/env python3
"""The fault matrix as a markdown table: every local-server scenario through the CLI.

``python scripts/fault_matrix.py [--write docs/fault-matrix.md] [--gimp-rows FILE]`` runs each
scenario through the CLI and prints the table, with the rows the real-GIMP tests recorded
(``FLUX_OUTPAINT_MATRIX_OUT``), then the CLI's own cases (``local_cases``: stdin, FIFOs,
links, signals) as a second table.  The expected outcomes and the runner are
``flux_outpaint_fal_local.matrix``; exit status 1 when a row differs from them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from flux_outpaint_fal_local import local_cases
from flux_outpaint_fal_local.matrix import (
    EXPECTED,
    EXPECTED_SUBMITS,
    load_recorded,
    run_cli_case,
    table,
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--write", type=Path, help="write the markdown table here")
    p.add_argument("--gimp-rows", type=Path, help="JSON lines recorded by the real-GIMP tests")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in EXPECTED:
            rows.append(run_cli_case(scenario, Path(tmp)))
    if args.gimp_rows:
        rows += load_recorded(args.gimp_rows)
    rows.sort(key=lambda r: (list(EXPECTED).index(r.scenario), r.path))
    local = []
    for case in local_cases.CASES:
        with tempfile.TemporaryDirectory() as tmp:
            local.append(local_cases.run_case(case, Path(tmp)))
    text = table(rows) + local_cases.table(local)
    print(text)
    if args.write:
        args.write.write_text(text)
    failures = [
        r
        for r in rows
        if r.ok != EXPECTED[r.scenario][0]
        or r.submits != EXPECTED_SUBMITS[r.scenario]
        or not r.unchanged
    ]
    failures += [r for r in local if r.code is not None and r.code != local_cases.CASES[r.case][1]]
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
