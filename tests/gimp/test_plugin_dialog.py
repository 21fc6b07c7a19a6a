"""The interactive path under Xvfb: the settings dialog, the key prompt, the wait dialog.

GIMP runs as gimp-console with DISPLAY set (a plug-in may open windows from the console
build); a small driver inside the chroot finds the windows with xdotool, takes screenshots
with ImageMagick and clicks.  There is no window manager, so keyboard focus follows the
pointer: the driver moves the pointer onto a window before typing.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from .harness import KEY, PRELUDE, files_containing, local_server, server_env

DISPLAY = ":77"
SETTINGS_TITLE = r"^Outpaint \(FLUX\.2 pro\)$"

# Runs inside the chroot with its python3 (no GIMP imports): argv[1] = the steps as JSON.
DRIVER = r"""
import json, os, subprocess, sys, time
steps = json.loads(sys.argv[1])
env = dict(os.environ, DISPLAY="@DISPLAY@")
xvfb = subprocess.Popen(["Xvfb", "@DISPLAY@", "-screen", "0", "1280x1024x24", "-nolisten",
                         "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
seen = []

def x(*args):
    return subprocess.run(["xdotool", *args], env=env, capture_output=True, text=True).stdout

def find(title, timeout):
    end = time.time() + timeout
    while time.time() < end:
        ids = x("search", "--name", title).split()
        if ids:
            return ids[0]
        time.sleep(0.3)
    return None

def geometry(wid):
    values = dict(line.split("=", 1) for line in x("getwindowgeometry", "--shell", wid).split())
    return int(values["WIDTH"]), int(values["HEIGHT"])

try:
    for step in steps:
        wid = find(step["window"], step.get("timeout", 60))
        if wid is None:
            seen.append({"window": step["window"], "found": False})
            subprocess.run(["import", "-window", "root", "missing.png"], env=env)
            break
        time.sleep(step.get("settle", 1.0))
        if step.get("shot"):
            subprocess.run(["import", "-window", "root", step["shot"]], env=env)
        width, height = geometry(wid)
        if step.get("type"):
            x("mousemove", "--window", wid, str(width // 2), str(height // 2))
            time.sleep(0.3)
            x("type", "--delay", "20", step["type"])
        if step.get("click", True):
            # OK in GIMP's dialogs, or the wait dialog's only button (Cancel): bottom-right
            x("mousemove", "--window", wid, str(width - 50), str(height - 28), "click", "1")
        seen.append({"window": step["window"], "found": True})
    for _ in range(600):
        if os.path.exists("batch-done"):
            break
        time.sleep(0.2)
finally:
    json.dump(seen, open("driver.json", "w"))
    xvfb.terminate()
""".replace("@DISPLAY@", DISPLAY)

BODY = r"""
import os
for _ in range(100):
    if os.path.exists("/tmp/.X11-unix/X@N@"):
        break
    time.sleep(0.1)
img, layer = make_image(400, 300, 50, 40, 300, 200)
img.set_selected_layers([layer])
before = snapshot(img)
procedure = PDB.lookup_procedure("plug-in-flux-outpaint")
cfg = procedure.create_config()
cfg.set_property("run-mode", Gimp.RunMode.INTERACTIVE)
cfg.set_property("image", img)
cfg.set_core_object_array("drawables", [layer])
result = procedure.run(cfg)
status = result.index(0)
value = result.index(1) if result.length() > 1 else None
report(status=status.value_nick, message=value if isinstance(value, str) else None,
       layers=[x.get_name() for x in img.get_layers()], unchanged=snapshot(img) == before)
""".replace("@N@", DISPLAY[1:])


def run_interactive(gimp, steps: list[dict], env: dict[str, str]) -> tuple[dict, list]:
    gimp.install_plugin()
    (gimp.host_dir / "driver.py").write_text(DRIVER)
    outcome: dict = {}

    def drive() -> None:
        outcome["driver"] = gimp.run(
            ["python3", f"{gimp.chroot_dir}/driver.py", json.dumps(steps)], timeout=240
        )

    thread = threading.Thread(target=drive)
    thread.start()
    try:
        result = gimp.run_batch(PRELUDE + BODY, env={**env, "DISPLAY": DISPLAY}, timeout=200)
    finally:
        (gimp.host_dir / "batch-done").write_text("1")
        thread.join(300)
    seen = json.loads((gimp.host_dir / "driver.json").read_text())
    return result.check(), seen


def saved_shot(gimp, name: str) -> Path:
    path = gimp.host_dir / name
    assert path.is_file() and path.stat().st_size > 1000, f"no screenshot {name}"
    return path


def test_dialog_ok_runs_and_saves_last_values_without_the_key(gimp):
    with local_server(run_seconds=3) as server:
        report, seen = run_interactive(
            gimp,
            [
                {"window": SETTINGS_TITLE, "shot": "dialog.png"},
                {"window": "^Outpainting$", "shot": "wait.png", "click": False, "timeout": 20},
            ],
            server_env(server),
        )
        submits = len(server.submits)
    assert report["status"] == "success", report
    assert report["layers"] == ["Outpaint", "Source"]
    assert submits == 1
    assert [s["found"] for s in seen] == [True, True], seen
    saved_shot(gimp, "dialog.png")
    saved_shot(gimp, "wait.png")
    last = list((gimp.host_profile / "plug-in-settings").glob("*flux-outpaint*.last"))
    assert last, "an interactive success saves last values"
    text = last[0].read_text(errors="replace")
    assert "expand-left" in text and KEY not in text
    assert files_containing(gimp.host_profile, KEY) == []


def test_key_prompt_remembers_the_key_privately(gimp):
    with local_server() as server:
        report, seen = run_interactive(
            gimp,
            [
                {"window": SETTINGS_TITLE},
                {"window": "^fal API key$", "type": KEY, "shot": "key.png"},
            ],
            server_env(server, key=None),
        )
        submits = len(server.submits)
    assert [s["found"] for s in seen] == [True, True], seen
    assert report["status"] == "success", report
    assert submits == 1  # the server only accepts KEY: the typed key was used
    key_file = gimp.host_home / ".config" / "flux-outpaint" / "fal-key"
    assert key_file.read_text().strip() == KEY
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert files_containing(gimp.host_profile, KEY) == []


def test_wait_dialog_cancel_asks_fal_to_cancel_and_changes_nothing(gimp):
    with local_server(scenarios=["never-finish"]) as server:
        report, seen = run_interactive(
            gimp,
            [
                {"window": SETTINGS_TITLE},
                {"window": "^Outpainting$", "settle": 2.0},
            ],
            server_env(server),
        )
        submits = len(server.submits)
        cancels = [e for e in server.log if str(e.get("path", "")).endswith("/cancel")]
    assert [s["found"] for s in seen] == [True, True], seen
    assert report["status"] == "cancel", report
    assert report["unchanged"] and report["layers"] == ["Source"]
    assert submits == 1 and cancels, server.log[-3:]
