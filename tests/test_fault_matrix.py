"""Every local-server fault through the CLI: one submit, a clear line, the input untouched."""

from pathlib import Path

import pytest
from fault_matrix import EXPECTED, EXPECTED_SUBMITS, parse_table, run_cli_case

TABLE = Path(__file__).resolve().parent.parent / "docs" / "fault-matrix.md"


@pytest.mark.parametrize("scenario", list(EXPECTED))
def test_cli_fault(scenario, tmp_path):
    row = run_cli_case(scenario, tmp_path)
    succeeds, fragment = EXPECTED[scenario]
    assert row.ok is succeeds, row
    assert row.submits == EXPECTED_SUBMITS[scenario], row
    assert row.unchanged, row
    if not succeeds:
        assert fragment in row.message, row
        assert "\n" not in row.message and row.message
        assert "matrix-key" not in row.message


def test_committed_table_matches_expectations():
    rows = parse_table(TABLE.read_text())
    paths = {r.path for r in rows}
    assert "CLI" in paths
    for path in paths:
        assert sorted(r.scenario for r in rows if r.path == path) == sorted(EXPECTED), path
    for row in rows:
        succeeds, fragment = EXPECTED[row.scenario]
        assert row.ok is succeeds and row.unchanged, row
        assert row.submits == EXPECTED_SUBMITS[row.scenario], row
        assert fragment in row.message, row
