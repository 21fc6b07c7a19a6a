"""In the chroot, beside the full GIMP: Xvfb on a free display and one Ctrl+Z, for the undo
check of test_plugin_large.py.  Runs in the session folder (the current directory).

It writes ``display`` as soon as Xvfb is up, waits for the batch's ``placed`` file, presses
Ctrl+Z once with the pointer over the image window, then waits for the host's ``batch-done``
and writes ``driver.json`` (whether it pressed).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import time

WAIT_S = 300


def wait_file(name: str, seconds: float) -> bool:
    end = time.time() + seconds
    while time.time() < end:
        if os.path.exists(name):
            return True
        time.sleep(0.2)
    return False


def main() -> None:
    state = {"display": None, "pressed": False}
    read_end, write_end = os.pipe()
    # -displayfd: Xvfb picks a free display (the chroots share the host's abstract sockets).
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x960x24", "-nolisten", "tcp"],
        pass_fds=[write_end],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        if select.select([read_end], [], [], 60)[0]:
            state["display"] = ":" + os.read(read_end, 32).decode().strip()
            with open("display.tmp", "w") as out:
                out.write(state["display"])
            os.rename("display.tmp", "display")
        env = dict(os.environ, DISPLAY=state["display"] or "")
        if state["display"] and wait_file("placed", WAIT_S):
            time.sleep(1.0)
            found = subprocess.run(
                ["xdotool", "search", "--onlyvisible", "--name", "GIMP"],
                env=env,
                capture_output=True,
                text=True,
            ).stdout.split()
            if found:
                subprocess.run(
                    ["xdotool", "mousemove", "--window", found[-1], "300", "300"], env=env
                )
                time.sleep(0.3)
                subprocess.run(["xdotool", "key", "ctrl+z"], env=env)
                state["pressed"] = True
        wait_file("batch-done", WAIT_S)
    finally:
        with open("driver.json", "w") as out:
            json.dump(state, out)
        xvfb.terminate()


main()
