#!/usr/bin/env python3
"""Hostile-server benchmark: time to exit, peak memory and CPU of the CLI, before and after.

    python scripts/hostile_bench.py [--before CHECKOUT] [--cap S] [--timeout N] [--only NAME,…]

For each hostile case the local fal server (from this checkout) runs with
that scenario on loopback, and the CLI outpaints a 256×256 PNG with ``--left 64
--timeout N`` against it through ``FAL_QUEUE_URL`` (or reads it from a hostile source:
``-`` from /dev/zero, a FIFO nobody writes to, a FIFO as ``<(…)`` gives; or writes to a
dangling link; or gets SIGTERM / SIGHUP while waiting) — once as the CLI of ``--before`` (a
checkout of an older version, e.g. /work/baseline; its own ``scripts/outpaint.py`` and its
own core) and once as this checkout's.  A run still going after ``--cap`` seconds, or past
``RSS_CAP_MB`` of memory, is killed from outside (the machine is shared).

Printed per case and version: the exit status (``kill`` when killed), seconds to exit, peak
RSS (MB, from the kernel's rusage) and CPU seconds (user + system), the submits the server
accepted, and a note (what leaked, what was written).  Then the last line each run printed.
It asserts nothing: figures, not tests.  The machine may be busy (GIMP tests run beside it),
so times are noisy; the memory figures are not.

The CLI is started by a small spawner process (this script with ``--spawner``), started
before anything large is loaded: a child's peak RSS as the kernel reports it includes the
memory of the process it was forked from, so it must be forked from a small one.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from dataclasses import dataclass
from pathlib import Path

# flux_outpaint_fal_local (numpy, Pillow) is imported only once the spawner runs: see the docstring.

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-key-id-7f3a:bench-secret-0123456789"
RSS_CAP_MB = 3000
POLL_S = 0.05


@dataclass(frozen=True)
class Case:
    name: str
    scenario: str | None = None  # flux_outpaint_fal_local scenario; None: a server without faults
    data: str = "normal"  # normal | under-file | full-disk
    tls: bool = False  # serve https with a certificate the CLI does not trust
    interrupt_after_s: float | None = None  # send ``signal`` after this long
    signal: str = "SIGINT"
    run_seconds: float = 0.5
    # What the CLI reads: "file" (a PNG), "stdin-zero" (``-`` from /dev/zero), "fifo-empty"
    # (a FIFO nobody writes to), "fifo-image" (a FIFO the PNG is written into, as ``<(…)``)
    source: str = "file"
    dangling_output: bool = False  # -o names a symbolic link to nowhere
    tty: bool = False  # the CLI's output on a terminal (its live progress shows log lines)
    # Not the CLI: the checkout's stdlib PNG decoder (the plug-in's fallback inside GIMP) on a
    # 12000×12000 black PNG of ~420 KB, as GIMP would meet it after GdkPixbuf refused it.
    stdlib_decode: bool = False


CASES = [
    Case("trickle-status", "trickle-status"),
    Case("trickle-result", "trickle-result"),
    Case("trickle-image", "trickle-image"),
    Case("endless-sse-line", "endless-sse-line"),
    Case("huge-status", "huge-status", run_seconds=30.0),  # polled again and again
    Case("huge-result", "huge-result"),
    Case("size-lie", "size-lie"),
    Case("png-bomb", "png-bomb"),
    Case("truncated-image", "truncated-image"),
    Case("bad-result-url", "bad-result-url"),
    Case("redirect-result", "redirect-result"),
    Case("echo-key", "echo-key", tty=True, run_seconds=1.5),
    Case("hostile-error", "hostile-error", tty=True),
    Case("key-in-url", "key-in-url"),
    Case("proxy-504", "proxy-504"),
    Case("mode-not-in-schema", "mode-not-in-schema"),
    Case("tls-untrusted", tls=True),
    Case("data-dir-under-a-file", data="under-file"),
    Case("full-disk", data="full-disk"),
    Case("ctrl-c-while-waiting", "never-finish", interrupt_after_s=3.0),
    Case("stdlib-png-bomb", stdlib_decode=True),
    # second round (issue 20)
    Case("gzip-bomb-submit", "gzip-bomb-submit"),
    Case("gzip-bomb-status", "gzip-bomb-status"),
    Case("gzip-bomb-result", "gzip-bomb-result"),
    Case("gzip-bomb-image", "gzip-bomb-image"),
    Case("gzip-result", "gzip-result"),
    Case("scan-bomb", "scan-bomb"),
    Case("scan-bomb-ctrl-c", "scan-bomb", interrupt_after_s=4.0),
    Case("forged-request-id", "forged-request-id"),
    Case("key-in-disguise", "key-in-disguise", tty=True, run_seconds=1.5),
    Case("stdin-zero", source="stdin-zero"),
    Case("fifo-empty", source="fifo-empty"),
    Case("fifo-image", source="fifo-image"),
    Case("dangling-output", dangling_output=True),
    Case("sigterm-while-waiting", "never-finish", interrupt_after_s=3.0, signal="SIGTERM"),
    Case("sighup-while-waiting", "never-finish", interrupt_after_s=3.0, signal="SIGHUP"),
]

# Decodes argv[2] with the pngcodec of the checkout argv[1]; prints what came of it.
DECODE = """
import sys
sys.path.insert(0, sys.argv[1] + "/plugin/flux-outpaint")
from flux_outpaint import pngcodec
data = open(sys.argv[2], "rb").read()
try:
    pixels, w, h, c = pngcodec.decode_png(data)
    print(f"decoded {w}x{h}, {len(pixels)} bytes")
except Exception as exc:
    print(f"{type(exc).__name__}: {exc}")
"""


@dataclass
class Run:
    status: str  # exit code, or "kill"
    seconds: float
    rss_mb: float
    cpu_s: float
    submits: int
    note: str
    last_line: str


def sample_png(path: Path) -> None:
    from PIL import Image

    image = Image.new("RGB", (256, 256))
    image.putdata([((x * 3) % 256, (y * 5) % 256, 90) for y in range(256) for x in range(256)])
    image.save(path)


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def measure(
    argv: list[str],
    env: dict,
    cap_s: float,
    interrupt_after_s: float | None,
    tty: bool,
    sig: str = "SIGINT",
    stdin: str | None = None,
):
    """Run, watch, kill at the caps (in the spawner); (status, seconds, peak RSS MB, CPU s,
    what it printed, why it was killed)."""
    with tempfile.TemporaryFile() as out:
        shown = bytearray()
        reader = None
        if tty:  # a pseudo-terminal: the CLI draws its live progress there
            master, slave = pty.openpty()
            # wide enough that a log line is drawn whole (the board cuts at the width)
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 400, 0, 0))
            sink: object = slave
            reader = threading.Thread(target=_drain, args=(master, shown), daemon=True)
        else:
            sink = out
        t0 = time.monotonic()
        source = open(stdin, "rb") if stdin else subprocess.DEVNULL  # noqa: SIM115
        proc = subprocess.Popen(argv, env=env, stdout=sink, stderr=sink, stdin=source)
        if stdin:
            source.close()
        if reader is not None:
            os.close(slave)
            reader.start()
        killed, interrupted = "", False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            elapsed = time.monotonic() - t0
            if interrupt_after_s is not None and not interrupted and elapsed >= interrupt_after_s:
                proc.send_signal(getattr(signal, sig))
                interrupted = True
            if elapsed >= cap_s:
                killed = f"killed at {cap_s:.0f} s"
            elif _rss_mb(proc.pid) > RSS_CAP_MB:
                killed = f"killed at {RSS_CAP_MB} MB"
            if killed:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(POLL_S)
        seconds = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        if reader is not None:
            reader.join(5)
        else:
            out.seek(0)
            shown += out.read()
        code = "kill" if killed else str(proc.returncode)
        cpu = usage.ru_utime + usage.ru_stime
        return code, seconds, usage.ru_maxrss / 1024, cpu, bytes(shown), killed


def _drain(fd: int, into: bytearray) -> None:
    with contextlib.suppress(OSError):  # EIO once the terminal's last writer has gone
        while chunk := os.read(fd, 65536):
            into += chunk
    os.close(fd)


def spawner() -> int:
    """One JSON command per line in, one JSON measurement per line out."""
    for line in sys.stdin:
        cmd = json.loads(line)
        code, seconds, rss, cpu, shown, killed = measure(
            cmd["argv"],
            cmd["env"],
            cmd["cap"],
            cmd["interrupt"],
            cmd["tty"],
            cmd.get("signal", "SIGINT"),
            cmd.get("stdin"),
        )
        Path(cmd["out"]).write_bytes(shown)
        print(json.dumps([code, seconds, rss, cpu, killed]), flush=True)
    return 0


class Spawner:
    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--spawner"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(
        self, argv, env, cap_s, interrupt_after_s, tty: bool, tmp: Path, sig="SIGINT", stdin=None
    ):
        assert self._proc.stdin is not None and self._proc.stdout is not None
        out = tmp / "shown.txt"
        command = {"argv": argv, "env": env, "cap": cap_s, "interrupt": interrupt_after_s}
        command.update(tty=tty, signal=sig, stdin=stdin)
        self._proc.stdin.write(json.dumps({**command, "out": str(out)}) + "\n")
        self._proc.stdin.flush()
        code, seconds, rss, cpu, killed = json.loads(self._proc.stdout.readline())
        return code, seconds, rss, cpu, out.read_bytes(), killed

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait(10)


@contextlib.contextmanager
def data_folder(kind: str, tmp: Path):
    """The FLUX_OUTPAINT_DATA_DIR for a case: a normal folder, one under a regular file, or
    one on a full 1 MiB tmpfs (root only)."""
    if kind == "normal":
        yield tmp / "data"
        return
    if kind == "under-file":
        blocker = tmp / "a-file"
        blocker.write_text("x")
        yield blocker / "data"
        return
    mount = tmp / "full"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)])
    if done.returncode != 0:
        raise RuntimeError("cannot mount a small tmpfs (needs root)")
    try:
        with contextlib.suppress(OSError), open(mount / "filler", "wb") as filler:
            while True:
                filler.write(bytes(4096))
                filler.flush()
        yield mount / "data"
    finally:
        subprocess.run(["umount", "-l", str(mount)])


@contextlib.contextmanager
def server_for(case: Case, tmp: Path):
    options: dict = {"run_seconds": case.run_seconds}
    if case.scenario:
        options["scenarios"] = [case.scenario]
    if case.tls:
        import trustme  # a test dependency: the case is skipped without it

        cert = trustme.CA().issue_cert("127.0.0.1")
        cert.private_key_and_cert_chain_pem.write_to_path(str(tmp / "cert.pem"))
        cert.private_key_pem.write_to_path(str(tmp / "key.pem"))
        options.update(tls_cert=str(tmp / "cert.pem"), tls_key=str(tmp / "key.pem"))
    import flux_outpaint_fal_local  # numpy and Pillow: only after the spawner has started

    with flux_outpaint_fal_local.start_server(**options) as server:
        yield server


def note_for(case: Case, shown: str, data: Path) -> str:
    notes = []
    if case.scenario in ("echo-key", "hostile-error"):
        secret = KEY.split(":")[1]
        notes.append(f"key shown ×{shown.count(secret)}")
        # the server's escapes, not the progress display's own (erase line, cursor up)
        hostile = sum(shown.count(e) for e in ("\x1b]", "\x1b[2J", "\x1b[31m"))
        notes.append(f"server escapes ×{hostile}")
        forged = len(re.findall(r"[\r\n](?:\x1b\[[0-9;]*[A-Za-z])*in\.png -> ", shown))
        notes.append(f"forged lines ×{forged}")
    if case.scenario == "key-in-url":
        journal = data / "journal.jsonl"
        text = journal.read_text(errors="replace") if journal.exists() else ""
        notes.append("key in journal" if KEY.split(":")[1] in text else "journal clean")
    if case.scenario == "key-in-disguise":
        secret = KEY.split(":")[1]
        squeezed = "".join(ch for ch in shown.lower() if ch.isalnum())
        plain = "".join(ch for ch in secret.lower() if ch.isalnum())
        forms = (plain, plain[::-1])
        leaked = sum(squeezed.count(f[i : i + 12]) for f in forms for i in range(len(f) - 11))
        notes.append(f"key fragments shown ×{leaked}")
        kept = [p for p in data.rglob("*") if p.is_file() and p.name != "journal.jsonl.lock"]
        blobs = b"".join(p.read_bytes() for p in kept)
        notes.append(f"key on disk ×{blobs.count(secret.encode())}")
    if case.scenario == "forged-request-id":
        notes.append(f"forged id shown ×{shown.count('$(touch')}")
        longest = max((len(line) for line in shown.splitlines()), default=0)
        notes.append(f"longest line {longest}")
    if case.data != "normal" or case.interrupt_after_s:
        journal = data / "journal.jsonl"
        lines = journal.read_text().splitlines() if journal.exists() else []
        states = [json.loads(line).get("state", "?") for line in lines if line.strip()]
        notes.append("journal: " + (" → ".join(states) if states else "empty"))
    return ", ".join(notes)


def run_case(case: Case, cli: Path, timeout_s: float, cap_s: float, spawn: Spawner) -> Run:
    if case.stdlib_decode:
        return run_decode(cli.parent.parent, cap_s, spawn)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        source = tmp / "in.png"
        sample_png(source)
        out = tmp / "out.png"
        if case.dangling_output:
            out.symlink_to(tmp / "nowhere" / "out.png")
        given, stdin, writer = str(source), None, None
        if case.source == "stdin-zero":
            given, stdin = "-", "/dev/zero"
        elif case.source.startswith("fifo"):
            fifo = tmp / "fifo.png"
            os.mkfifo(fifo)
            given = str(fifo)
            if case.source == "fifo-image":
                writer = threading.Thread(
                    target=_feed, args=(fifo, source.read_bytes()), daemon=True
                )
                writer.start()
        with data_folder(case.data, tmp) as data, server_for(case, tmp) as server:
            env = {
                **os.environ,
                "FAL_KEY": KEY,
                "FAL_QUEUE_URL": server.base_url,
                "FLUX_OUTPAINT_DATA_DIR": str(data),
                "FLUX_OUTPAINT_CONFIG_DIR": str(tmp / "config"),
            }
            env.pop("FLUX_OUTPAINT_TIME_SCALE", None)
            env.pop("SSL_CERT_FILE", None)
            argv = [sys.executable, str(cli), given, "--left", "64"]
            argv += ["--timeout", str(timeout_s), "-o", str(out)]
            code, seconds, rss, cpu, shown_bytes, killed = spawn.run(
                argv, env, cap_s, case.interrupt_after_s, case.tty, tmp, case.signal, stdin
            )
            submits = len(server.submits)
            shown = shown_bytes.decode("utf-8", "replace")
            note = ", ".join(n for n in (killed, note_for(case, shown, data)) if n)
            if out.exists() and not out.is_symlink():
                note = ", ".join(n for n in (note, "output written") if n)
            parts = list(tmp.glob(".out.png.*.part"))
            if parts:
                note = ", ".join(n for n in (note, f"{len(parts)} .part left") if n)
        if case.source.startswith("fifo"):
            _unblock(tmp / "fifo.png")
    lines = [ln for ln in shown.splitlines() if ln.strip()]
    last = repr(lines[-1])[1:-1] if lines else ""
    return Run(code, seconds, rss, cpu, submits, note, last[:160])


def _feed(fifo: Path, data: bytes) -> None:
    with contextlib.suppress(OSError), open(fifo, "wb") as f:
        f.write(data)


def _unblock(fifo: Path) -> None:
    """A reader or writer still waiting on the FIFO (the run was killed) is let go."""
    with contextlib.suppress(OSError):
        fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
        os.close(fd)


def run_decode(checkout: Path, cap_s: float, spawn: Spawner) -> Run:
    from flux_outpaint_fal_local import hostile

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        bomb = tmp / "bomb.png"
        bomb.write_bytes(hostile.black_png(12000, 12000))
        argv = [sys.executable, "-c", DECODE, str(checkout), str(bomb)]
        code, seconds, rss, cpu, shown_bytes, killed = spawn.run(
            argv, dict(os.environ), cap_s, None, False, tmp
        )
        note = f"{bomb.stat().st_size // 1024} KB file" + (f", {killed}" if killed else "")
    last = shown_bytes.decode("utf-8", "replace").strip().splitlines()
    return Run(code, seconds, rss, cpu, 0, note, last[-1][:160] if last else "")


def table(results: list[tuple[Case, dict[str, Run]]], versions: list[str]) -> str:
    head = ["case"]
    for v in versions:
        head += [f"{v}: exit", "s", "RSS MB", "CPU s", "submits", "note"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for case, runs in results:
        cells = [case.name]
        for v in versions:
            r = runs.get(v)
            if r is None:
                cells += ["n/a"] * 6
                continue
            cells += [
                r.status,
                f"{r.seconds:.1f}",
                f"{r.rss_mb:.0f}",
                f"{r.cpu_s:.1f}",
                str(r.submits),
                r.note.replace("|", "/"),
            ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", type=Path, help="an older checkout to compare with")
    p.add_argument("--cap", type=float, default=60.0, help="kill a run after this long")
    p.add_argument("--timeout", type=float, default=10.0, help="the CLI's --timeout")
    p.add_argument("--only", default="", help="comma-separated case names")
    p.add_argument("--spawner", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.spawner:
        return spawner()
    spawn = Spawner()
    versions: dict[str, Path] = {}
    if args.before:
        versions["before"] = args.before / "scripts" / "outpaint.py"
    versions["after"] = ROOT / "scripts" / "outpaint.py"
    wanted = {n for n in args.only.split(",") if n}
    results = []
    for case in CASES:
        if wanted and case.name not in wanted:
            continue
        runs: dict[str, Run] = {}
        for version, cli in versions.items():
            try:
                runs[version] = run_case(case, cli, args.timeout, args.cap, spawn)
            except (ImportError, RuntimeError) as exc:
                print(f"{case.name} ({version}): skipped: {exc}", file=sys.stderr)
                continue
            r = runs[version]
            print(
                f"{case.name} ({version}): exit {r.status} in {r.seconds:.1f} s, "
                f"{r.rss_mb:.0f} MB, {r.cpu_s:.1f} s CPU, {r.submits} submit(s); {r.note}",
                file=sys.stderr,
                flush=True,
            )
        results.append((case, runs))
    spawn.close()
    print(table(results, list(versions)))
    print()
    for case, runs in results:
        for version, r in runs.items():
            print(f"- {case.name} ({version}): {r.last_line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
