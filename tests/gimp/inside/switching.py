"""Inside GIMP: ask the host for another local fal server (or none) and wait until it is there.

The host side is ``SwitchedServer`` in test_plugin_fault_matrix.py: it watches the session
folder for ``switch-N`` commands and answers each with ``switch-N.done`` (empty, or the error).
"""

from __future__ import annotations

import json
import os
import time


class ServerSwitch:
    """``switch(label, scenarios, stop)``; ``params`` is what the host passed as
    ``params["switch"]``: ``timeout_s`` and ``poll_s``."""

    def __init__(self, session_dir, params):
        self.session_dir = session_dir
        self.timeout_s = params["timeout_s"]
        self.poll_s = params["poll_s"]
        self.switches = 0

    def __call__(self, label, scenarios=(), stop=False):
        self.switches += 1
        path = os.path.join(self.session_dir, f"switch-{self.switches}")
        with open(path + ".tmp", "w") as out:
            json.dump({"label": label, "scenarios": list(scenarios), "stop": stop}, out)
        os.rename(path + ".tmp", path)  # the host never sees half a command
        deadline = time.monotonic() + self.timeout_s
        while not os.path.exists(path + ".done"):
            if time.monotonic() > deadline:
                raise RuntimeError("the host did not switch the local server")
            time.sleep(self.poll_s)
        with open(path + ".done") as done:
            error = done.read()
        if error:
            raise RuntimeError("switching the local server failed: " + error)
