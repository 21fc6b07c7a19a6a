"""What a batch hands back to the host: ``report(**values)``, written out by the runner.

Runs inside GIMP (see runner.py).  Values must be JSON-able; others come back as repr().
"""

from __future__ import annotations

REPORT: dict[str, object] = {}


def report(**values: object) -> None:
    REPORT.update(values)
