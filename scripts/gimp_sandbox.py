#!/usr/bin/env python3
"""Debian chroots with real GIMP 3.0 (trixie) and GIMP 3.2 (forky) for the real-GIMP tests.

    python3 scripts/gimp_sandbox.py ensure trixie forky [--rebuild]
    python3 scripts/gimp_sandbox.py status
    python3 scripts/gimp_sandbox.py path NAME
    python3 scripts/gimp_sandbox.py run NAME -- CMD [ARGS...]

The chroots live outside the repository, in /var/cache/flux-outpaint/sandboxes/<name>
(FLUX_OUTPAINT_SANDBOXES moves them). Standard library only; building and running need root.

Every command inside a chroot runs in its own mount namespace (``unshare -m``): /proc, /dev
and /sys are mounted there and vanish with the last process, so nothing is left mounted on the
host, runs never race each other over mounts, and deleting a chroot can never reach the host's
/dev through a forgotten bind mount.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

CACHE_ENV = "FLUX_OUTPAINT_SANDBOXES"
DEFAULT_CACHE = Path("/var/cache/flux-outpaint/sandboxes")
MIRROR = "http://deb.debian.org/debian"
# GIMP and its Python bindings, plus what the GUI tests drive it with.
PACKAGES = ("gimp", "python3-gi", "gir1.2-gimp-3.0", "xvfb", "xauth", "xdotool", "imagemagick")
# The plug-in must work without these (Windows/macOS/Flatpak GIMPs lack them), so the
# sandboxes must lack them too, or a stray import would pass here and fail for users.
FORBIDDEN_MODULES = ("numpy", "PIL", "httpx")
STAMP = "etc/flux-outpaint-sandbox.json"  # written last: a chroot without it is unusable
PROFILE_TEMPLATE = "/opt/profile-template"  # a GIMP profile that has already queried plug-ins
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BASE_ENV = {"PATH": CHROOT_PATH, "HOME": "/root", "LANG": "C.UTF-8"}
# Bump when the build recipe changes: older chroots then count as missing and get rebuilt.
RECIPE = 1
# The first start of GIMP on a fresh profile queries ~100 plug-ins (6-8 s on 2 cores).
WARM_TIMEOUT_S = 300
APT_TIMEOUT_S = 3600
# Slimmer chroots: no docs, manuals or translations (the tests run GIMP in English).
DPKG_EXCLUDES = """\
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
"""
APT_CONF = """\
// forky's Release file may be past its Valid-Until date.
Acquire::Check-Valid-Until "false";
// The download cache is a host folder bind-mounted in, which _apt cannot write.
APT::Sandbox::User "root";
APT::Install-Recommends "false";
"""
# Run inside the new mount namespace: $1 root, $2 number of bind pairs, pairs, then argv.
_MOUNT_AND_CHROOT = r"""
set -e
root=$1; n=$2; shift 2
while [ "$n" -gt 0 ]; do
    mkdir -p "$root$2"; mount --bind "$1" "$root$2"; shift 2; n=$((n - 1))
done
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --rbind /sys "$root/sys"
exec chroot "$root" "$@"
"""
# The warm-up is itself a Python plug-in call (python-fu-eval), so its marker file proves that
# GIMP's Python plug-ins work with this package set.
_WARM_CODE = (
    "import gi; gi.require_version('Gimp', '3.0'); from gi.repository import Gimp; "
    "Gimp.get_pdb(); open('/tmp/.flux-outpaint-warm', 'w').write(Gimp.version())"
)
_PROBE_CODE = (
    "import importlib.util, json, sys; "
    "print(json.dumps({'python': '%d.%d.%d' % sys.version_info[:3], 'modules': "
    "{m: importlib.util.find_spec(m) is not None for m in sys.argv[1:]}}))"
)


class SandboxError(Exception):
    """A failure with a one-line explanation the user can act on."""


@dataclass(frozen=True)
class Suite:
    name: str
    gimp_series: str  # the GIMP release series the suite ships
    python_series: str  # the /usr/bin/python3 GIMP's plug-ins run with
    fallback_script: str  # debootstrap script to use when the host's debootstrap lacks the suite


SUITES = {
    "trixie": Suite("trixie", "3.0", "3.13", "sid"),
    "forky": Suite("forky", "3.2", "3.14", "sid"),
}


@dataclass(frozen=True)
class Sandbox:
    """What a finished chroot holds; stored as JSON in ``<root>/etc/flux-outpaint-sandbox.json``."""

    name: str
    root: str
    recipe: int
    gimp_version: str  # e.g. "3.0.4"
    python_version: str  # e.g. "3.13.5"
    gimp_console: str  # in-chroot path, e.g. "/usr/bin/gimp-console-3.0"
    profile_template: str  # in-chroot path of the pre-warmed profile
    profile_series: str  # "3.0" / "3.2": the profile folder name GIMP would use
    built_at: str
    build_seconds: float
    warm_seconds: float  # first GIMP start on an empty profile

    @property
    def path(self) -> Path:
        return Path(self.root)


# -- locations ----------------------------------------------------------------------------


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def suite(name: str) -> Suite:
    if name not in SUITES:
        raise SandboxError(f"unknown sandbox {name!r} (known: {', '.join(SUITES)})")
    return SUITES[name]


def root(name: str) -> Path:
    return cache_dir() / suite(name).name


def info(name: str) -> Sandbox | None:
    """The finished sandbox called ``name``, or None when it is missing or out of date."""
    try:
        data = json.loads((root(name) / STAMP).read_text(encoding="utf-8"))
        box = Sandbox(**data)
    except (OSError, ValueError, TypeError):
        return None
    return box if box.recipe == RECIPE else None


def require(name: str) -> Sandbox:
    box = info(name)
    if box is None:
        raise SandboxError(
            f"sandbox {name!r} is not built: run "
            f"`python3 scripts/gimp_sandbox.py ensure {name}` as root"
        )
    return box


def host_path(name: str, chroot_path: str) -> Path:
    """Where a path inside the chroot is on the host."""
    if not chroot_path.startswith("/"):
        raise ValueError(f"not an absolute chroot path: {chroot_path!r}")
    return root(name) / chroot_path.lstrip("/")


def chroot_path(name: str, path: os.PathLike[str] | str) -> str:
    """The in-chroot path of a host path that lies inside the chroot."""
    rel = Path(path).resolve().relative_to(root(name).resolve())
    return "/" + rel.as_posix() if rel.parts else "/"


# -- running inside -----------------------------------------------------------------------


def chroot_argv(
    chroot: Path,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    binds: Sequence[tuple[os.PathLike[str] | str, str]] = (),
) -> list[str]:
    """The host command running ``argv`` in ``chroot`` with a clean environment.

    ``env`` is added to BASE_ENV (nothing leaks in from the host); ``binds`` are
    (host folder, chroot folder) pairs mounted for this command only.
    """
    full_env = {**BASE_ENV, **(env or {})}
    inner = ["/usr/bin/env", "-i"]
    if cwd:
        inner += ["-C", cwd]
    inner += [f"{k}={v}" for k, v in full_env.items()]
    pairs = [str(p) for src, dst in binds for p in (Path(src).resolve(), dst)]
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        _MOUNT_AND_CHROOT,
        "sh",
        str(chroot),
        str(len(binds)),
        *pairs,
        *inner,
        *argv,
    ]


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group ``proc`` leads (it was started with start_new_session)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the kill-the-children handlers


def run_in(
    chroot: Path,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    input: str | bytes | None = None,
    cwd: str | None = None,
    binds: Sequence[tuple[os.PathLike[str] | str, str]] = (),
    capture: bool = True,
    text: bool = True,
) -> subprocess.CompletedProcess:
    """Run ``argv`` inside ``chroot``; on timeout everything it started is killed.

    Raises subprocess.TimeoutExpired (with the output so far) like subprocess.run.
    """
    if os.geteuid() != 0:
        raise SandboxError("running a command in a sandbox needs root (chroot, mount)")
    cmd = chroot_argv(chroot, argv, env=env, cwd=cwd, binds=binds)
    stream = subprocess.PIPE if capture else None
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE if input is not None else None,
        stdout=stream,
        stderr=stream,
        text=text,
        errors="replace" if text else None,
        # Own group so a timeout kills all it started; not when the
        # terminal is attached, or an interactive shell inside would stop.
        start_new_session=capture,
    )
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        raise subprocess.TimeoutExpired(cmd, timeout or 0, out, err) from None
    except BaseException:
        _kill_group(proc)
        raise
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)


def run(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    input: str | bytes | None = None,
    cwd: str | None = None,
    binds: Sequence[tuple[os.PathLike[str] | str, str]] = (),
    capture: bool = True,
    text: bool = True,
) -> subprocess.CompletedProcess:
    """Run ``argv`` inside the finished sandbox ``name`` (see run_in)."""
    return run_in(
        require(name).path,
        argv,
        env=env,
        timeout=timeout,
        input=input,
        cwd=cwd,
        binds=binds,
        capture=capture,
        text=text,
    )


# -- building -----------------------------------------------------------------------------


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve())
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as table:
        for line in table:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return found


def remove_tree(path: Path) -> None:
    """Delete a chroot, refusing while anything is mounted inside it."""
    if not path.exists() and not path.is_symlink():
        return
    for point in sorted(_mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)
    if _mounts_under(path):
        raise SandboxError(f"{path} still has mounts inside; unmount them, then retry")
    shutil.rmtree(path)


@contextlib.contextmanager
def _lock(name: str) -> Iterator[None]:
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


class _Log:
    """Step output goes to a build log; the console gets one line per step."""

    def __init__(self, path: Path):
        self.path = path
        path.write_text("", encoding="utf-8")

    def step(self, name: str, text: str) -> None:
        print(f"[{name}] {text}", flush=True)
        with self.path.open("a", encoding="utf-8") as log:
            log.write(f"\n=== {text}\n")

    def run(self, argv: Sequence[str], *, timeout: float | None = None) -> None:
        with self.path.open("a", encoding="utf-8") as log:
            # Own process group: an interrupted build takes debootstrap's children with it.
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                returncode = proc.wait(timeout)
            except BaseException:
                _kill_group(proc)
                raise
        if returncode != 0:
            raise SandboxError(
                f"{argv[0]} failed (exit {returncode}); see {self.path}:\n" + self.tail()
            )

    def tail(self, lines: int = 15) -> str:
        return "\n".join(
            self.path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        )


def _ensure_debootstrap() -> None:
    if shutil.which("debootstrap"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "debootstrap"]
    if subprocess.run(install, env=env).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
        subprocess.run(install, env=env, check=True)


def _debootstrap_script(s: Suite) -> list[str]:
    scripts = Path("/usr/share/debootstrap/scripts")
    return [] if (scripts / s.name).exists() else [str(scripts / s.fallback_script)]


def _chroot_output(chroot: Path, argv: Sequence[str], log: _Log, **kw) -> str:
    done = run_in(chroot, argv, timeout=kw.pop("timeout", 600), **kw)
    with log.path.open("a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(argv)}\n{done.stdout}{done.stderr}")
    if done.returncode != 0:
        raise SandboxError(
            f"{argv[0]} failed in the chroot (exit {done.returncode}); see "
            f"{log.path}:\n{log.tail()}"
        )
    return done.stdout


def _gimp_console(chroot: Path, s: Suite) -> str:
    found = sorted((chroot / "usr/bin").glob("gimp-console-3.*"))
    if not found:
        raise SandboxError(f"no gimp-console-3.* in {chroot}/usr/bin after installing gimp")
    return "/usr/bin/" + found[-1].name


def build(name: str) -> Sandbox:
    """Build the chroot in a scratch folder and rename it into place when it is complete."""
    s = suite(name)
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    debs = cache / ".debs" / s.name
    archives = debs / "archives"
    (archives / "partial").mkdir(parents=True, exist_ok=True)
    work = cache / f".build-{s.name}"
    log = _Log(cache / f"{s.name}.build.log")
    started = time.monotonic()
    remove_tree(work)  # a half-built chroot from an interrupted run is never reused

    log.step(name, f"debootstrap --variant=minbase {s.name} (log: {log.path})")
    # In its own mount namespace: an interrupted debootstrap leaves no /proc mounted in work.
    log.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "debootstrap",
            "--variant=minbase",
            f"--cache-dir={debs.resolve()}",
            s.name,
            str(work),
            MIRROR,
            *_debootstrap_script(s),
        ],
        timeout=APT_TIMEOUT_S,
    )

    (work / "etc/apt/apt.conf.d/99flux-outpaint-sandbox").write_text(APT_CONF)
    (work / "etc/dpkg/dpkg.cfg.d/01-flux-outpaint-slim").write_text(DPKG_EXCLUDES)
    policy = work / "usr/sbin/policy-rc.d"  # no daemons start inside the chroot
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)

    log.step(name, f"apt-get install {' '.join(PACKAGES)}")
    apt_env = {"DEBIAN_FRONTEND": "noninteractive"}
    binds = [(archives, "/var/cache/apt/archives")]
    _chroot_output(
        work, ["apt-get", "update", "-q"], log, env=apt_env, binds=binds, timeout=APT_TIMEOUT_S
    )
    _chroot_output(
        work,
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES],
        log,
        env=apt_env,
        binds=binds,
        timeout=APT_TIMEOUT_S,
    )

    probe = json.loads(
        _chroot_output(work, ["python3", "-c", _PROBE_CODE, *FORBIDDEN_MODULES], log)
    )
    present = [m for m, found in probe["modules"].items() if found]
    if present:
        raise SandboxError(
            f"{name}: GIMP's python3 can import {', '.join(present)}; the "
            "sandbox must not have them"
        )
    console = _gimp_console(work, s)
    version_line = _chroot_output(work, [console, "--version"], log)
    match = re.search(r"version (\d+\.\d+\.\d+)", version_line)
    if not match:
        raise SandboxError(f"cannot read the GIMP version from {version_line!r}")
    gimp_version = match[1]
    if not gimp_version.startswith(s.gimp_series + "."):
        raise SandboxError(f"{name} ships GIMP {gimp_version}, expected {s.gimp_series}.x")

    log.step(name, f"GIMP {gimp_version}, python {probe['python']}: warming a profile")
    warm_started = time.monotonic()
    _chroot_output(
        work,
        [
            "timeout",
            "-k",
            "10",
            str(WARM_TIMEOUT_S),
            console,
            "-i",
            "--batch-interpreter",
            "python-fu-eval",
            "-b",
            _WARM_CODE,
            "--quit",
        ],
        log,
        env={"GIMP3_DIRECTORY": PROFILE_TEMPLATE},
        timeout=WARM_TIMEOUT_S + 30,
    )
    warm_seconds = time.monotonic() - warm_started
    marker = work / "tmp/.flux-outpaint-warm"
    if not marker.is_file() or not (work / PROFILE_TEMPLATE.lstrip("/") / "pluginrc").is_file():
        raise SandboxError(
            f"{name}: GIMP's Python batch interpreter did not run; see {log.path}:\n{log.tail()}"
        )
    marker.unlink()

    final = cache / s.name
    box = Sandbox(
        name=s.name,
        root=str(final),
        recipe=RECIPE,
        gimp_version=gimp_version,
        python_version=probe["python"],
        gimp_console=console,
        profile_template=PROFILE_TEMPLATE,
        profile_series=".".join(gimp_version.split(".")[:2]),
        built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        build_seconds=round(time.monotonic() - started, 1),
        warm_seconds=round(warm_seconds, 2),
    )
    (work / STAMP).write_text(json.dumps(asdict(box), indent=2) + "\n", encoding="utf-8")
    old = cache / f".old-{s.name}"
    remove_tree(old)
    if final.exists():
        os.rename(final, old)
    os.rename(work, final)
    remove_tree(old)
    log.step(name, f"ready in {box.build_seconds:.0f} s: {final}")
    return box


def ensure(names: Sequence[str], *, rebuild: bool = False) -> list[Sandbox]:
    if os.geteuid() != 0:
        raise SandboxError("building a sandbox needs root (debootstrap, chroot, mount)")
    for name in names:
        suite(name)
    _ensure_debootstrap()
    boxes = []
    for name in names:
        with _lock(name):
            box = None if rebuild else info(name)
            if box is None:
                box = build(name)
            else:
                print(
                    f"[{name}] ready: GIMP {box.gimp_version}, python {box.python_version} "
                    f"({box.root})"
                )
            boxes.append(box)
    return boxes


# -- command line -------------------------------------------------------------------------


def _size(path: Path) -> str:
    done = subprocess.run(["du", "-sh", str(path)], capture_output=True, text=True)
    return done.stdout.split()[0] if done.returncode == 0 and done.stdout else "?"


def status_lines() -> list[str]:
    lines = [f"sandboxes in {cache_dir()} (set {CACHE_ENV} to move them)"]
    for name, s in SUITES.items():
        box = info(name)
        if box is not None:
            lines.append(
                f"  {name}: GIMP {box.gimp_version} ({box.gimp_console}), python "
                f"{box.python_version}, built {box.built_at} in "
                f"{box.build_seconds:.0f} s, {_size(box.path)}"
            )
        elif root(name).exists():
            lines.append(f"  {name}: out of date or incomplete (run ensure {name})")
        else:
            lines.append(f"  {name}: missing (expected GIMP {s.gimp_series}.x)")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gimp_sandbox.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_ensure = sub.add_parser("ensure", help="build the named sandboxes unless ready")
    p_ensure.add_argument("names", nargs="+", choices=list(SUITES))
    p_ensure.add_argument("--rebuild", action="store_true", help="build again even if ready")
    sub.add_parser("status", help="what exists, with GIMP versions")
    p_path = sub.add_parser("path", help="print a sandbox's root folder")
    p_path.add_argument("name", choices=list(SUITES))
    p_run = sub.add_parser("run", help="run a command inside: run NAME -- CMD [ARGS...]")
    p_run.add_argument("name", choices=list(SUITES))
    p_run.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    try:
        if args.command == "ensure":
            ensure(args.names, rebuild=args.rebuild)
        elif args.command == "status":
            print("\n".join(status_lines()))
        elif args.command == "path":
            print(require(args.name).root)
        else:
            cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
            if not cmd:
                parser.error("run NAME -- CMD [ARGS...]")
            env = {"TERM": os.environ["TERM"]} if "TERM" in os.environ else None
            return run(args.name, cmd, env=env, capture=False).returncode
    except SandboxError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
