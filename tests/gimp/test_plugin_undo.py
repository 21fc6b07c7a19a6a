"""One run is one undo step, and undoing it gives back the image exactly as it was.

Plug-ins have no undo call, so this drives GIMP's own Edit ▸ Undo: the full GIMP (not the
console build) runs under Xvfb with the image in a window; the batch places a result, then
waits while a driver in the chroot presses Ctrl+Z once over the image window.
"""

from __future__ import annotations

import json
import threading

from .harness import PRELUDE, RUNNER, local_server, server_env

DISPLAY = ":78"

BODY = r"""
import os
SESSION = "@SESSION@"
img, layer = make_image(500, 300, 0, 0, 500, 300)
img.set_selected_layers([layer])
img.clean_all()
Gimp.Display.new(img)
Gimp.displays_flush()
before = snapshot(img)
r = outpaint(img, [layer], expand_left=64, expand_top=32)
after = snapshot(img)
report(ok=r["ok"], message=r["message"], changed=after != before, size_after=after["size"])
open(os.path.join(SESSION, "placed"), "w").write("1")
deadline = time.time() + 60
while time.time() < deadline and len(img.get_layers()) > 1:
    time.sleep(0.2)
time.sleep(1.0)  # a second Ctrl+Z would land here: one press must be enough
undone = snapshot(img)
report(undone=undone == before, size_undone=undone["size"],
       layers_undone=[x[0] for x in undone["layers"]])
"""

DRIVER = r"""
import os, subprocess, time
env = dict(os.environ, DISPLAY="@DISPLAY@")
xvfb = subprocess.Popen(["Xvfb", "@DISPLAY@", "-screen", "0", "1280x1024x24", "-nolisten",
                         "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
pressed = 0
try:
    for _ in range(900):
        if os.path.exists("placed"):
            break
        time.sleep(0.2)
    time.sleep(1.0)
    ids = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "GIMP"], env=env,
                         capture_output=True, text=True).stdout.split()
    if ids and os.path.exists("placed"):
        wid = ids[-1]
        subprocess.run(["xdotool", "mousemove", "--window", wid, "300", "300"], env=env)
        time.sleep(0.3)
        subprocess.run(["xdotool", "key", "ctrl+z"], env=env)
        pressed = 1
        subprocess.run(["import", "-window", "root", "undo.png"], env=env)
    for _ in range(900):
        if os.path.exists("batch-done"):
            break
        time.sleep(0.2)
finally:
    open("driver.json", "w").write(str(pressed))
    xvfb.terminate()
"""


def test_one_undo_step_restores_the_image(gimp):
    gimp.install_plugin()
    d = gimp.host_dir
    (d / "undo-body.py").write_text(PRELUDE + BODY.replace("@SESSION@", gimp.chroot_dir))
    (d / "undo-runner.py").write_text(
        RUNNER.replace("@CODE@", f"{gimp.chroot_dir}/undo-body.py").replace(
            "@RESULT@", f"{gimp.chroot_dir}/undo.json"
        )
    )
    (d / "driver.py").write_text(DRIVER.replace("@DISPLAY@", DISPLAY))
    gui = gimp.sandbox.gimp_console.replace("gimp-console-", "gimp-")
    outcome: dict = {}
    thread = threading.Thread(
        target=lambda: outcome.update(
            driver=gimp.run(["python3", f"{gimp.chroot_dir}/driver.py"], timeout=300)
        )
    )
    with local_server() as server:
        thread.start()
        try:
            done = gimp.run(
                [
                    "timeout",
                    "-k",
                    "10",
                    "200",
                    gui,
                    "--no-splash",
                    "-d",
                    "-f",
                    "--batch-interpreter",
                    "python-fu-eval",
                    "-b",
                    f"exec(open({gimp.chroot_dir + '/undo-runner.py'!r}).read())",
                    "--quit",
                ],
                env={**server_env(server), "DISPLAY": DISPLAY},
                timeout=260,
            )
        finally:
            (d / "batch-done").write_text("1")
            thread.join(300)
    state = json.loads((d / "undo.json").read_text())
    assert state["error"] is None, state["error"] + done.stderr[-2000:]
    report = state["report"]
    assert (d / "driver.json").read_text() == "1", "the driver found no image window"
    assert report["ok"] and report["changed"], report
    assert report["size_after"] == [564, 332]
    assert report["undone"], report
    assert report["size_undone"] == [500, 300] and report["layers_undone"] == ["Source"]
