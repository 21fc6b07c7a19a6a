"""``bench.py --seam``'s moved-object table (scripts/seam_bench.py) on a small photo: a row
per photo, its figures measured on real CLI runs against the local server."""

from __future__ import annotations

import pytest
from cli_support import ROOT, photo
from script_modules import script

pytestmark = pytest.mark.server  # the CLI against the local fal server on loopback


def test_the_moved_object_table_has_a_row_per_photo(tmp_path, capsys):
    seam_bench = script("seam_bench")
    src = tmp_path / "small.png"
    photo(200, 160, seed=3).save(src)
    rows = seam_bench.moved(lambda name: src, ROOT / "scripts", tmp_path, photos=("small.png",))
    (row,) = rows
    assert row["photo"] == "small.png"
    for side in ("right", "top"):
        figures = row[side]
        assert set(figures) == {"off", "on", "drift"}
        assert figures["on"] < 0.5 * figures["off"], (side, figures)  # the drift shows when off
        assert abs(figures["on"] - figures["drift"]) <= 0.5, (side, figures)
    assert len(row["band_change"]) == 3 and max(map(abs, row["band_change"])) <= 1.0
    seam_bench.print_moved(rows)
    printed = capsys.readouterr().out
    assert "moved object" in printed and "| small.png | " in printed
