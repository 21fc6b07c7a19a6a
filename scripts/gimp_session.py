"""GIMP sessions on the host: throwaway GIMP profiles inside the Debian chroots built by
gimp_sandbox.py, the plug-in installed into them, and python-fu-eval batches.  The real-GIMP
tests (tests/gimp/sandbox.py) and bench_gimp.py both run GIMP through this module.

A session lives in ``<chroot>/tmp/flux-outpaint-tests/<name>-<pid>-<hex>/``, which the host sees
as ``session.host_dir`` and GIMP as ``session.chroot_dir``:

    profile/   GIMP3_DIRECTORY, copied from the chroot's pre-warmed profile template
    home/      HOME (the plug-in's key file, journal and caches land here, not in /root)
    inside/    the code that runs in the chroot: gimp_runner/ (the batch runner and
               ``reporting``) plus the session's own batch folders (``batches``)
    batch-N.json, batch-N.result.json   one job and its result per run_batch() call
    batch-N.stdout.txt, batch-N.stderr.txt   what GIMP (and every plug-in it ran) printed

Code never travels as text: a batch is a function in a module of inside/, its parameters
travel as JSON in the job file, and what it reports comes back as JSON (see
gimp_runner/runner.py).

A module, not a program: loaded from its file (by the tests' ``script_modules`` or by
bench_gimp.py, whose folder is on the path), as is gimp_sandbox.py, which it uses.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import gimp_sandbox

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_SOURCE = ROOT / "plugin" / "flux-outpaint"
SESSIONS_IN_CHROOT = "/tmp/flux-outpaint-tests"
BATCH_TIMEOUT_S = 180  # one GIMP start (~3 s from the template) plus the batch's own work
RUN_TIMEOUT_S = 120
KILL_GRACE_S = 10  # `timeout -k`: SIGKILL this long after SIGTERM
STALE_SESSION_S = 6 * 3600  # leftovers of interrupted runs older than this are deleted
KEEP_ENV = "FLUX_OUTPAINT_KEEP_GIMP_TMP"  # "1" keeps session folders for post-mortems
STDERR_SHOWN = 60  # distinct lines of GIMP's stderr a failing test's report shows
WHEELHOUSE_ENV = "FLUX_OUTPAINT_WHEELHOUSE"  # offline vendor/ builds from a wheel folder

RUNNER = Path(__file__).resolve().parent / "gimp_runner"  # copied into each session's inside/
# The one line python-fu-eval runs: it runs the file RUNNER_ENV names (the session's copy of
# gimp_runner/runner.py), which reads the job JOB_ENV names.  The paths travel in the environment,
# so this line is a constant: nothing is ever spliced into code.
RUNNER_ENV = "FLUX_OUTPAINT_RUNNER"
JOB_ENV = "FLUX_OUTPAINT_BATCH"  # gimp_runner/runner.py reads the same name
BATCH_COMMAND = (
    "import os, runpy; runpy.run_path(os.environ['FLUX_OUTPAINT_RUNNER'], run_name='__main__')"
)


def _load(name: str, path: Path) -> ModuleType:
    """A program's file as the module ``name`` (once: registered in ``sys.modules``)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _install_module() -> ModuleType:
    """install.py as ``flux_install``; the ``install_vendor`` it imports is loaded first."""
    _load("install_vendor", ROOT / "install_vendor.py")
    return _load("flux_install", ROOT / "install.py")


def build_vendor(dest: Path) -> Path:
    """vendor/ exactly as install.py builds it (pinned pure-Python httpx stack)."""
    install_vendor = _load("install_vendor", ROOT / "install_vendor.py")
    wheelhouse = os.environ.get(WHEELHOUSE_ENV)
    install_vendor.build_vendor(dest, Path(wheelhouse) if wheelhouse else None, sys.executable)
    return dest


def install_plugin(
    profile: Path, vendor: Path, source: Path = PLUGIN_SOURCE, series: str = ""
) -> Path:
    """Install the plug-in from ``source`` into the GIMP profile folder ``profile``.

    The one place the tests install the plug-in, through install.py's own code path
    (the same as ``python3 install.py --gimp-dir PROFILE``). Returns the installed folder.
    """
    install = _install_module()
    target = install.Profile(profile, series, "--gimp-dir")
    install.install_profile(target, source, vendor, False)
    return target.target


@dataclass(frozen=True)
class BatchResult:
    returncode: int  # GIMP's: 0 ok, 64 when the batch raised, 124 timed out
    stdout: str
    stderr: str
    seconds: float  # wall clock, GIMP start to exit
    report: dict | None  # what the batch passed to report(); None if it never finished
    error: str | None  # the batch's traceback, if it raised

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.error is None and self.report is not None

    def describe(self) -> str:
        tail = "\n".join(self.stderr.splitlines()[-40:])
        return (
            f"GIMP exit {self.returncode} after {self.seconds:.1f} s\n"
            f"error: {self.error}\nstdout:\n{self.stdout[-2000:]}\nstderr (tail):\n{tail}"
        )

    def check(self) -> dict:
        """The report, or an AssertionError that shows what GIMP printed."""
        if not self.ok:
            raise AssertionError(f"GIMP batch failed: {self.describe()}")
        assert self.report is not None
        return self.report


class GimpSession:
    """A fresh GIMP profile in one sandbox, with ways to install the plug-in and run GIMP."""

    def __init__(
        self,
        name: str,
        *,
        vendor: Callable[[], Path] | None = None,
        keep: bool | None = None,
        batches: Sequence[Path] = (),
    ):
        self.sandbox = gimp_sandbox.require(name)
        self._batches_from = tuple(batches)  # folders copied into inside/ beside the runner
        self.name = name
        self.gimp_version = self.sandbox.gimp_version
        self.python_version = self.sandbox.python_version
        self._vendor = vendor
        self._keep = os.environ.get(KEEP_ENV) == "1" if keep is None else keep
        self._batches = itertools.count(1)
        base = gimp_sandbox.host_path(name, SESSIONS_IN_CHROOT)
        base.mkdir(parents=True, exist_ok=True)
        _remove_stale(base)
        self.host_dir = base / f"{name}-{os.getpid()}-{secrets.token_hex(4)}"
        self.host_dir.mkdir()
        self.chroot_dir = f"{SESSIONS_IN_CHROOT}/{self.host_dir.name}"
        self.host_profile = self.host_dir / "profile"
        self.chroot_profile = f"{self.chroot_dir}/profile"
        self.host_home = self.host_dir / "home"
        self.chroot_home = f"{self.chroot_dir}/home"
        template = gimp_sandbox.host_path(name, self.sandbox.profile_template)
        shutil.copytree(template, self.host_profile, symlinks=True)
        self.host_home.mkdir()

    # -- paths -----------------------------------------------------------------------------
    def host(self, chroot_path: str) -> Path:
        return gimp_sandbox.host_path(self.name, chroot_path)

    def chroot(self, host_path: os.PathLike[str] | str) -> str:
        return gimp_sandbox.chroot_path(self.name, host_path)

    @property
    def env(self) -> dict[str, str]:
        return {"HOME": self.chroot_home, "GIMP3_DIRECTORY": self.chroot_profile}

    # -- the plug-in -----------------------------------------------------------------------
    def vendor(self) -> Path:
        if self._vendor is None:
            raise RuntimeError("this session was made without a vendor/ provider")
        return self._vendor()

    def install_plugin(self, source: Path = PLUGIN_SOURCE) -> Path:
        """Install the plug-in (with vendor/) into this profile; returns the host folder."""
        return install_plugin(self.host_profile, self.vendor(), source, self.sandbox.profile_series)

    def copy_in(self, host_source: Path, name: str | None = None) -> str:
        """Copy a host file or folder into the session folder; returns its chroot path."""
        dest = self.host_dir / (name or host_source.name)
        if host_source.is_dir():
            shutil.copytree(host_source, dest, symlinks=True)
        else:
            shutil.copy2(host_source, dest)
        return self.chroot(dest)

    # -- running ---------------------------------------------------------------------------
    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = RUN_TIMEOUT_S,
        input: str | None = None,
        cwd: str | None = None,
    ) -> subprocess.CompletedProcess:
        """Run a command in the chroot with this session's HOME and GIMP3_DIRECTORY."""
        return gimp_sandbox.run(
            self.name,
            argv,
            env={**self.env, **(env or {})},
            timeout=timeout,
            input=input,
            cwd=cwd or self.chroot_dir,
        )

    def inside(self) -> str:
        """The runner and the session's batch folders copied into the session folder's
        inside/ (once); returns its chroot path."""
        dest = self.host_dir / "inside"
        if not dest.exists():
            skip = shutil.ignore_patterns("__pycache__")
            for folder in (RUNNER, *self._batches_from):
                shutil.copytree(folder, dest, ignore=skip, dirs_exist_ok=True)
        return self.chroot(dest)

    @property
    def gimp_gui(self) -> str:
        """The full GIMP (with windows) beside gimp-console, as a chroot path."""
        return self.sandbox.gimp_console.replace("gimp-console-", "gimp-")

    def run_batch(
        self,
        batch: str,
        params: Mapping[str, object] | None = None,
        *,
        timeout: float = BATCH_TIMEOUT_S,
        env: Mapping[str, str] | None = None,
        load_data: bool = False,
        load_fonts: bool = False,
        gui: bool = False,
        extra_args: Sequence[str] = (),
    ) -> BatchResult:
        """Start GIMP on this profile, run one batch with python-fu-eval, then quit.

        ``batch`` names a function in a module of inside/: ``"module"`` (its ``main``) or
        ``"module:function"``.  It is called with ``params`` plus ``session_dir`` (the session
        folder's chroot path), which travel as JSON; what it passes to ``report(**values)``
        comes back in ``.report``.  ``gui`` starts the full GIMP instead of gimp-console
        (it needs a ``DISPLAY`` in ``env``).  Installed plug-ins are queried at start-up, so
        install before calling this.
        """
        n = next(self._batches)
        job = self.host_dir / f"batch-{n}.json"
        result = self.host_dir / f"batch-{n}.result.json"
        job.write_text(
            json.dumps(
                {
                    "batch": batch,
                    "params": {"session_dir": self.chroot_dir, **(params or {})},
                    "result": self.chroot(result),
                }
            ),
            encoding="utf-8",
        )
        batch_env = {
            **(env or {}),
            RUNNER_ENV: f"{self.inside()}/runner.py",
            JOB_ENV: self.chroot(job),
        }
        binary = self.gimp_gui if gui else self.sandbox.gimp_console
        flags = [
            "--no-splash" if gui else "-i",
            *([] if load_data else ["-d"]),
            *([] if load_fonts else ["-f"]),
        ]
        argv = [
            "timeout",
            "-k",
            str(KILL_GRACE_S),
            str(int(timeout)),
            binary,
            *flags,
            *extra_args,
            "--batch-interpreter",
            "python-fu-eval",
            "-b",
            BATCH_COMMAND,
            "--quit",
        ]
        started = time.monotonic()
        done = self.run(argv, env=batch_env, timeout=timeout + KILL_GRACE_S + 30)
        seconds = time.monotonic() - started
        # GIMP's output beside the job, for post-mortems of kept sessions (KEEP_ENV): a plug-in
        # that died mid-call is named only there ("Plug-in crashed", "(killing)", a signal).
        for stream, text in (("stdout", done.stdout), ("stderr", done.stderr)):
            (self.host_dir / f"batch-{n}.{stream}.txt").write_text(text or "", encoding="utf-8")
        # pytest shows a test's captured output only when it fails: then GIMP's own words are
        # in the report even when the session folder is gone.
        print(
            f"[{self.name} batch {n}: GIMP exit {done.returncode} after {seconds:.1f} s]",
            file=sys.stderr,
        )
        print("\n".join(_distinct_lines(done.stderr or "")[-STDERR_SHOWN:]), file=sys.stderr)
        state = None
        with contextlib.suppress(OSError, ValueError):
            state = json.loads(result.read_text(encoding="utf-8"))
        return BatchResult(
            done.returncode,
            done.stdout,
            done.stderr,
            seconds,
            state["report"] if state else None,
            state["error"] if state else None,
        )

    def close(self) -> None:
        if not self._keep:
            shutil.rmtree(self.host_dir, ignore_errors=True)


def _distinct_lines(text: str) -> list[str]:
    """Non-blank lines, each once (GIMP repeats some notices on every plug-in call)."""
    return list(dict.fromkeys(line for line in text.splitlines() if line.strip()))


def _remove_stale(base: Path) -> None:
    cutoff = time.time() - STALE_SESSION_S
    for old in base.iterdir():
        with contextlib.suppress(OSError):
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
