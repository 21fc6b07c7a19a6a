"""The CLI's own hostile cases: what comes from the machine, not the server.

Standard input from ``/dev/zero``, a FIFO nobody writes to, an image through ``<(cat …)``, a
dangling link as ``-o``, SIGTERM and SIGHUP while a request waits on fal.  None has a path in
the GIMP plug-in (it reads no files and takes no signals of its own: GIMP's Cancel kills it),
so these rows are the CLI's only.  ``run_case`` runs one against the local server (scenario
``never-finish`` for the signals) on loopback; ``scripts/fault_matrix.py`` prints them as a
second table of ``docs/fault-matrix.md`` and ``tests/test_fault_matrix.py`` checks it.
Each case needs what the platform may lack (/dev/zero, FIFOs, bash, the signal): where it is
missing the case is reported as not run, never as passed.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .matrix import CLI, KEY, _sample_png, stable
from .server import LocalServer, start_server

# case → (what it is, the exit status, a fragment of the last line; "" for a result)
CASES: dict[str, tuple[str, int, str]] = {
    "stdin-dev-zero": ("`- < /dev/zero`", 1, "Not an image"),
    "fifo-no-writer": ("a FIFO nobody writes to, `--timeout 2`", 1, "within 2 s"),
    "process-substitution": ("`<(cat in.png)`", 0, ""),
    "dangling-output": ("`-o` a link to a missing file", 1, "exists; --force replaces it"),
    "sigterm-waiting": ("SIGTERM while fal runs the request", 143, "cancelled request"),
    "sighup-waiting": ("SIGHUP while fal runs the request", 129, "cancelled request"),
}
# submits each case may cost: only the signals reach fal (and cancel there)
SUBMITS = {name: (1 if name.startswith("sig") else 0) for name in CASES}
SUBMITS["process-substitution"] = 1
_SIGNALS = {"sigterm-waiting": "SIGTERM", "sighup-waiting": "SIGHUP"}


@dataclass(frozen=True)
class LocalRow:
    case: str
    code: int | None  # None: not run here (the platform lacks what it needs)
    line: str
    submits: int
    leftovers: int  # files left next to the output (.part)

    def markdown(self) -> str:
        what, wanted, _ = CASES[self.case]
        code = "not run" if self.code is None else str(self.code)
        line = self.line.replace("|", "\\|")
        cells = [self.case, what, str(wanted), code, line, str(self.submits), str(self.leftovers)]
        return "| " + " | ".join(cells) + " |"


def _missing(name: str) -> str:
    if name == "stdin-dev-zero" and not os.path.exists("/dev/zero"):
        return "/dev/zero"
    if name == "fifo-no-writer" and not hasattr(os, "mkfifo"):
        return "FIFOs"
    if name == "process-substitution" and (shutil.which("bash") is None):
        return "bash"
    if name in _SIGNALS and not hasattr(signal, _SIGNALS[name]):
        return _SIGNALS[name]
    return ""


def run_case(name: str, workdir: Path) -> LocalRow:
    if _missing(name):
        return LocalRow(name, None, f"(no {_missing(name)} here)", 0, 0)
    source = workdir / "in.png"
    _sample_png(source)
    out = workdir / "out.png"
    env = {
        **os.environ,
        "FAL_KEY": KEY,
        "FLUX_OUTPAINT_TIME_SCALE": "0.05",
        "FLUX_OUTPAINT_DATA_DIR": str(workdir / "data"),
        "FLUX_OUTPAINT_CONFIG_DIR": str(workdir / "config"),
    }
    env.pop("FAL_QUEUE_URL", None)
    scenarios = ["never-finish"] if name in _SIGNALS else []
    with start_server(scenarios=scenarios, run_seconds=0.2) as server:
        args = ["--left", "16", "-o", str(out), "--base-url", server.base_url]
        if name == "stdin-dev-zero":
            with open("/dev/zero", "rb") as zeros:
                done = subprocess.run(
                    [*CLI, "-", *args], env=env, stdin=zeros, capture_output=True, timeout=120
                )
            code, err = done.returncode, done.stderr
        elif name == "fifo-no-writer":
            fifo = workdir / "fifo.png"
            os.mkfifo(fifo)
            done = subprocess.run(
                [*CLI, str(fifo), *args, "--timeout", "2"],
                env=env,
                capture_output=True,
                timeout=120,
            )
            code, err = done.returncode, done.stderr
        elif name == "process-substitution":
            command = " ".join(f"'{a}'" for a in CLI[:2]) + f' "{CLI[2]}"'
            line = f'{command} <(cat "{source}") ' + " ".join(f"'{a}'" for a in args)
            done = subprocess.run(["bash", "-c", line], env=env, capture_output=True, timeout=120)
            code, err = done.returncode, done.stderr
        elif name == "dangling-output":
            out.symlink_to(workdir / "missing" / "out.png")
            done = subprocess.run(
                [*CLI, str(source), *args], env=env, capture_output=True, timeout=120
            )
            code, err = done.returncode, done.stderr
        else:
            code, err = _signalled(server, [*CLI, str(source), *args], env, _SIGNALS[name])
        submits = len(server.submits)
    shown = err.decode("utf-8", "replace")
    lines = [ln for ln in shown.splitlines() if ln.strip() and not ln.startswith("done ")]
    wanted = CASES[name][2]
    line = next((ln for ln in lines if wanted and wanted in ln), lines[-1] if lines else "")
    leftovers = len([p for p in workdir.iterdir() if p.name.startswith(".out.png")])
    line = re.sub(r"done \d+(?:\.\d+)?s", "done …s", re.sub(r"/\S+/", "…/", line))
    return LocalRow(name, code, stable(line)[:200], submits, leftovers)


def _signalled(
    server: LocalServer, argv: list[str], env: dict[str, str], sig: str
) -> tuple[int, bytes]:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    started = time.monotonic()
    while time.monotonic() - started < 60:  # until fal runs it
        jobs = [server._backend.jobs.get(rid) for rid in server.submits]
        if jobs and all(j is not None and j.state == "IN_PROGRESS" for j in jobs):
            break
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.send_signal(getattr(signal, sig))
    timer = threading.Timer(60, proc.kill)
    timer.start()
    try:
        _, err = proc.communicate()
    finally:
        timer.cancel()
    return proc.returncode, err


def table(rows: list[LocalRow]) -> str:
    head = (
        "\n## The CLI's own cases\n\n"
        "What comes from the machine rather than the server (no path in the plug-in). Generated "
        "with the table above (`flux_outpaint_fal_local.local_cases`); checked by "
        "`tests/test_fault_matrix.py`. *Left* counts `.part` files left beside the output.\n\n"
        "| case | what | expected exit | exit | line | submits | left |\n"
        "|---|---|---|---|---|---|---|\n"
    )
    return head + "\n".join(r.markdown() for r in rows) + "\n"


def parse(text: str) -> dict[str, tuple[str, int, int]]:
    """case → (exit column, submits, left) from the committed table."""
    found: dict[str, tuple[str, int, int]] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 7 and cells[0] in CASES:
            found[cells[0]] = (cells[3], int(cells[5]), int(cells[6]))
    return found
