"""One run is one undo step, and undoing it gives back the image exactly as it was.

Plug-ins have no undo call, so this drives GIMP's own Edit ▸ Undo: the full GIMP (not the
console) runs under Xvfb with the image in a window; the batch (inside/undo_run.py) places a
result, then waits while a driver in the chroot (inside/undo_driver.py) presses Ctrl+Z once
over the image window.
"""

from __future__ import annotations

import json

from .harness import gui_driver, local_server, server_env

SCREEN = "1280x1024x24"
GIMP_TIMEOUT_S = 200
DRIVER_TIMEOUT_S = 300
WAIT_S = 60  # each of the batch's waits for the driver


def test_one_undo_step_restores_the_image(gimp):
    gimp.install_plugin()
    d = gimp.host_dir
    with (
        local_server() as server,
        gui_driver(gimp, "undo_driver.py", {"screen": SCREEN}, DRIVER_TIMEOUT_S) as display,
    ):
        result = gimp.run_batch(
            "undo_run",
            {"wait_s": WAIT_S},
            env={**server_env(server), "DISPLAY": display},
            timeout=GIMP_TIMEOUT_S,
            gui=True,
        )
    driver = json.loads((d / "driver.json").read_text())
    assert driver["failure"] is None, (
        f"the driver gave up: {driver['failure']} (Xvfb: {driver['xvfb']})\n{result.describe()}"
    )
    assert result.error is None, result.error + result.stderr[-2000:]
    report = result.report
    assert report is not None, f"the batch never finished: {result.describe()}"
    assert driver["pressed"] == 1, "the driver found no image window"
    assert report["ok"] and report["changed"], report
    assert report["size_after"] == [564, 332]
    assert report["undo_seen"], f"Ctrl+Z did not remove the Outpaint layer within {WAIT_S} s"
    assert report["undone"], report
    assert report["size_undone"] == [500, 300] and report["layers_undone"] == ["Source"]
