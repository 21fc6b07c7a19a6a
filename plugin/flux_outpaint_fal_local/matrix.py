"""The fault matrix: what every scenario of the local server must do to our client.

``EXPECTED`` holds each scenario's outcome (success, or a fragment of the one-line message),
``EXPECTED_SUBMITS`` how many submits the server must accept (a retry never bills twice).
Every registered scenario must have a row here (``tests/test_fault_matrix.py`` checks it), so
a new scenario is not done until its expected outcome is written down.

``run_cli`` runs one scenario through the CLI (a real subprocess against a real socket, or
whatever ``run=`` runs it with: ``tests/test_fault_matrix.py`` calls ``main(argv)`` in its own
process); ``tests/test_fault_matrix.py`` and the real-GIMP tests check the outcomes, and
``scripts/fault_matrix.py`` prints the table (``docs/fault-matrix.md``).  The GIMP rows come
from the real-GIMP tests, which record their outcomes in the same shape (``Row``) when
``FLUX_OUTPAINT_MATRIX_OUT`` names a JSON-lines file.

For every row: the outcome (``ok`` or the one-line message), how many submits the server
accepted, and whether the user's image was left unchanged on failure (CLI: the input file's
bytes and no output file).  The hostile scenarios are rows like the others; their time and
memory figures live in ``scripts/hostile_bench.py``, not here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .server import start_server

# The CLI as a fresh process, as a user runs it (the installed console command's entry).
CLI = [sys.executable, "-c", "from flux_outpaint_cli.main import entry; entry()"]
# The client's own pauses run at this fraction of their real length (retry.py, "Time scale"),
# so the matrix takes seconds; outcomes do not depend on it.  A scenario that succeeds runs
# with DEADLINE_S and never reaches it (429-once waits out fal's one-second Retry-After, which
# is never scaled).  One that must give up at its deadline (SLOW) gets a deadline on the same
# scale as the pauses, GIVE_UP_S: half a minute of a user's time, still several times what the
# local server needs to finish the job (run_seconds=0.2) so that "it had already finished"
# holds where it should.
TIME_SCALE = 0.05
DEADLINE_S = 4.0
GIVE_UP_S = 30 * TIME_SCALE

# scenario → (succeeds?, a fragment the one-line message must contain)
EXPECTED: dict[str, tuple[bool, str]] = {
    "429-once": (True, ""),
    "500-once": (True, ""),
    "ingress-503": (True, ""),
    "drop-result": (True, ""),
    "stall-status": (True, ""),
    "ignore-cancel": (True, ""),
    "fail-job": (False, "HTTP 500"),
    "content-policy": (False, "safety filter"),
    "never-finish": (False, "within the time limit"),
    "wrong-size": (False, "instead of"),
    "expired-result": (False, "no longer knows this request"),
    "locked": (False, "User is locked"),
    "trickle-status": (False, "within the time limit"),
    "trickle-result": (False, "within the time limit"),
    "trickle-image": (False, "within the time limit"),
    "endless-sse-line": (True, ""),
    "huge-status": (False, "larger than 4 MiB"),
    "huge-result": (False, "larger than 4 MiB"),
    "size-lie": (False, "more than any outpaint result"),
    "png-bomb": (False, "decompression bomb"),
    "truncated-image": (False, "truncated"),
    "bad-result-url": (False, "malformed result URL"),
    "redirect-result": (False, "redirect refused"),
    "echo-key": (True, ""),
    "hostile-error": (False, "HTTP 500"),
    "key-in-url": (True, ""),
    "proxy-504": (False, "not sent again"),
    "mode-not-in-schema": (True, ""),
    "fail-once": (False, "HTTP 500"),
    "drift": (True, ""),
    "drift-varying": (True, ""),
    "texture": (True, ""),
    "moved-object": (True, ""),
    # second round: compressed bombs, a decode-cost bomb, a forged id, the key in disguise
    "gzip-bomb-submit": (False, "HTTP 500"),
    "gzip-bomb-status": (False, "content encoding that is not accepted"),
    "gzip-bomb-result": (False, "content encoding that is not accepted"),
    "gzip-bomb-image": (False, "content encoding that is not accepted"),
    "gzip-result": (True, ""),
    "scan-bomb": (False, "more than 64 scans"),
    "forged-request-id": (False, "fal is busy (HTTP 429)"),
    "key-in-disguise": (True, ""),
}
# The ones that wait out the whole deadline.
SLOW = frozenset({"never-finish", "trickle-status", "trickle-result", "trickle-image"})


def deadline_s(scenario: str) -> float:
    """The deadline (``--timeout``) a scenario runs with."""
    return GIVE_UP_S if scenario in SLOW else DEADLINE_S


# The key every path runs with; the hostile scenarios echo it back.
KEY = "matrix-key-id-7f3a:matrix-secret-0123456789abcdef"  # fal's id:secret shape

# accepted submits per scenario: "locked" and "gzip-bomb-submit" are refused at submit, so
# nothing is billed
EXPECTED_SUBMITS = {name: (0 if name in ("locked", "gzip-bomb-submit") else 1) for name in EXPECTED}


@dataclass(frozen=True)
class Row:
    scenario: str
    path: str  # "CLI", "GIMP 3.0", "GIMP 3.2"
    ok: bool
    message: str
    submits: int
    unchanged: bool

    def markdown(self) -> str:
        outcome = "result placed" if self.ok else "error"
        message = self.message.replace("|", "\\|") if not self.ok else ""
        return (
            f"| {self.scenario} | {self.path} | {outcome} | {message} | {self.submits} | "
            f"{'yes' if self.unchanged else 'NO'} |"
        )


_REQUEST_ID = re.compile(r"\(request [0-9a-f-]{36}\)")
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
_LOOPBACK_PORT = re.compile(r"\b(127\.0\.0\.1|localhost|\[::1\]):\d+")


def stable(message: str) -> str:
    """A message without its request id (however it is quoted) or the local server's port,
    so tables and comparisons are reproducible."""
    message = _UUID.sub("…", _REQUEST_ID.sub("(request …)", message))
    return _LOOPBACK_PORT.sub(r"\1:…", message).strip()


def _sample_png(path: Path) -> None:
    from PIL import Image

    image = Image.new("RGB", (96, 64))
    image.putdata([((x * 5) % 256, (y * 7) % 256, 128) for y in range(64) for x in range(96)])
    image.save(path)


# How the CLI is run: its arguments and environment in, the finished run (bytes) out.
CliRunner = Callable[[list[str], dict[str, str]], "subprocess.CompletedProcess[bytes]"]


def run_process(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    """The CLI as a fresh process, as a user runs it."""
    return subprocess.run([*CLI, *args], capture_output=True, env=env, timeout=120)


def run_cli(
    scenario: str, workdir: Path, run: CliRunner = run_process
) -> tuple[Row, subprocess.CompletedProcess[str], Path]:
    """One scenario through the CLI: its row, the finished run (text) and the data folder."""
    source = workdir / f"{scenario}.png"
    _sample_png(source)
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    out = workdir / f"{scenario}-out.png"
    data = workdir / f"{scenario}-data"
    env = {
        **os.environ,
        "FAL_KEY": KEY,
        "FLUX_OUTPAINT_TIME_SCALE": str(TIME_SCALE),
        "FLUX_OUTPAINT_DATA_DIR": str(data),
        "FLUX_OUTPAINT_CONFIG_DIR": str(workdir / "config"),
    }
    env.pop("FAL_QUEUE_URL", None)
    with start_server(scenarios=[scenario], run_seconds=0.2) as server:
        done = run(
            [
                str(source),
                "--left",
                "16",
                "--bottom",
                "8",
                "--base-url",
                server.base_url,
                "--timeout",
                str(deadline_s(scenario)),
                "-o",
                str(out),
            ],
            env,
        )
        submits = len(server.submits)
    proc = subprocess.CompletedProcess(
        done.args,
        done.returncode,
        done.stdout.decode(errors="replace"),
        done.stderr.decode(errors="replace"),
    )
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    ok = proc.returncode == 0 and out.exists()
    message = "" if ok else stable(lines[-1].split(": ", 1)[-1] if lines else "")
    unchanged = hashlib.sha256(source.read_bytes()).hexdigest() == before and (
        ok or not out.exists()
    )
    return Row(scenario, "CLI", ok, message, submits, unchanged), proc, data


def run_cli_case(scenario: str, workdir: Path, run: CliRunner = run_process) -> Row:
    return run_cli(scenario, workdir, run)[0]


def table(rows: list[Row]) -> str:
    head = (
        "# Fault matrix\n\n"
        "Every fault the local fal server can inject, through each path. Generated by "
        "`python scripts/fault_matrix.py --write docs/fault-matrix.md` (GIMP rows from the "
        "real-GIMP tests); checked by `tests/test_fault_matrix.py`.\n\n"
        "| scenario | path | outcome | message | submits | image unchanged |\n"
        "|---|---|---|---|---|---|\n"
    )
    return head + "\n".join(r.markdown() for r in rows) + "\n"


def parse_table(text: str) -> list[Row]:
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) != 6 or cells[0] in ("scenario", "---"):
            continue
        rows.append(
            Row(
                cells[0],
                cells[1],
                cells[2] == "result placed",
                cells[3].replace("\\|", "|"),
                int(cells[4]),
                cells[5] == "yes",
            )
        )
    return rows


def load_recorded(path: Path) -> list[Row]:
    if not path.exists():
        return []
    rows = [Row(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
    # A test run may set a GIMP up twice (pytest re-creates a module's fixture when other
    # modules' tests run in between): the same row recorded twice is one row.
    return list(dict.fromkeys(rows))
