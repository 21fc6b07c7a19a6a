"""In-GIMP step times at 1, 4 and 16 MP: read, encode, decode, place.  Printed, not asserted.

The steps are the glue's own functions, called inside GIMP exactly as a run calls them; the
network is left out (it is the server's time, not GIMP's).  The canvas is 4:3 with the layer
inset by a tenth on every side, so the 16 MP case takes the downscale path: the reference is
read at the plan's scale, and placing includes scaling the result up to the canvas (where the
mask shows it).  The timed batch is inside/timings.py; scripts/bench_gimp.py times whole calls
through the PDB.
"""

from __future__ import annotations

import pytest

from .harness import run

SIZES_MP = (1, 4, 16)


@pytest.mark.parametrize("sandbox", ["trixie", "forky"], ids=["gimp3.0", "gimp3.2"])
def test_print_step_timings(sandbox, vendor_dir, capsys):
    from .sandbox import GimpSession

    session = GimpSession(sandbox, vendor=lambda: vendor_dir)
    try:
        session.install_plugin()
        report = run(session, "timings", {"sizes_mp": SIZES_MP}, {}, timeout=900)
    finally:
        session.close()
    lines = [
        f"GIMP {session.gimp_version}: in-GIMP step times (ms); place includes the "
        "mask and, when downscaled, scaling the result up"
    ]
    for mp in SIZES_MP:
        r = report[f"{mp}MP"]
        lines.append(
            f"  {mp:>2} MP {r['canvas'][0]}x{r['canvas'][1]} -> request {r['request'][0]}x"
            f"{r['request'][1]} (scale {r['scale']}, sends {r['encoding']}): "
            f"read {r['read_ms']} + resample {r['resample_ms']}, encode jpeg "
            f"{r['encode_jpeg_ms']} / png {r['encode_png_ms']}"
            f", decode png {r['decode_png_ms']} / jpeg {r['decode_jpeg_ms']}, "
            f"mask {r['mask_ms']}, place {r['place_ms']}"
        )
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert set(report) == {f"{mp}MP" for mp in SIZES_MP}
