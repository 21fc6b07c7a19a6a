"""The vendor/ folder of the plug-in: httpx and its dependencies, pure Python for 3.10-3.14.

GIMP runs the plug-in with its own Python (3.10 on macOS up to 3.14 on Fedora), never the one
running install.py, so packages are fetched for a generic pure-Python target and then checked:
every distribution must admit 3.10-3.14 and nothing any of them needs may be missing.
Standard library only, Python 3.9+, like install.py.
"""

from __future__ import annotations

import contextlib
import operator
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

# pip's --python-version does not apply markers to the target (pypa/pip #11010), so the
# conditional dependencies (exceptiongroup for 3.10) are listed here and --no-deps is used.
VENDOR_PINS = (
    "httpx==0.28.1",
    "httpcore==1.0.9",
    "h11==0.16.0",
    "anyio==4.16.0",
    "sniffio==1.3.1",
    "idna==3.20",
    "certifi==2026.10.19.post1",
    "typing_extensions==4.16.0",
    "exceptiongroup==1.3.2",
)
TARGET_PYTHONS = ((3, 10), (3, 11), (3, 12), (3, 13), (3, 14))
_COMPARE = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "===": operator.eq,
    "!=": operator.ne,
    "~=": operator.ge,
}


class InstallError(Exception):
    """A failure the user can act on; ``str()`` is the one line we print."""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_available(python: str) -> bool:
    try:
        return (
            subprocess.run([python, "-m", "pip", "--version"], capture_output=True).returncode == 0
        )
    except OSError:
        return False


def pip_command(python: str, dest: Path, wheelhouse: Path | None) -> list[str]:
    # Older pips test Requires-Python against the running interpreter even with
    # --python-version; check_vendor() tests it against GIMP's 3.10-3.14 instead.
    offline = ["--no-index", "--find-links", str(wheelhouse)] if wheelhouse else []
    return [
        python,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--target",
        str(dest),
        "--only-binary=:all:",
        "--platform",
        "any",
        "--implementation",
        "py",
        "--abi",
        "none",
        "--python-version",
        "3.10",
        "--no-compile",
        "--no-deps",
        "--ignore-requires-python",
        *offline,
        *VENDOR_PINS,
    ]


def unpack_wheels(wheelhouse: Path, dest: Path) -> None:
    """No pip: a pure-Python (``*-none-any``) wheel installs by unzipping it."""
    wheels = {
        (canonical(w.stem.split("-")[0]), w.stem.split("-")[1]): w
        for w in wheelhouse.glob("*-none-any.whl")
    }
    for pin in VENDOR_PINS:
        name, version = pin.split("==")
        wheel = wheels.get((canonical(name), version))
        if wheel is None:
            raise InstallError(f"{wheelhouse} has no pure-Python wheel for {pin}")
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.infolist():
                parts = member.filename.split("/")
                if parts[0].endswith(".data"):  # only purelib matters; scripts are unwanted
                    parts = parts[2:] if parts[1:2] in (["purelib"], ["platlib"]) else []
                if parts and not member.is_dir() and ".." not in parts and parts[0]:
                    target = dest.joinpath(*parts)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.read(member))


def build_vendor(
    dest: Path, wheelhouse: Path | None, python: str, *, verbose: bool = False
) -> None:
    """Fill ``dest`` with the pinned pure-Python packages, tidy it, then verify it.
    ``verbose``: pip's command and its own output are shown as it runs."""
    dest.mkdir(parents=True, exist_ok=True)
    if pip_available(python):
        # Common global pip settings that forbid or conflict with --target.
        env = {**os.environ, "PIP_REQUIRE_VIRTUALENV": "0", "PIP_USER": "0"}
        command = pip_command(python, dest, wheelhouse)
        if verbose:
            print(f"Running: {' '.join(command)}", flush=True)
        done = subprocess.run(
            command,
            stdout=None if verbose else subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        if verbose and done.stderr:
            print(done.stderr, end="", file=sys.stderr)
        if done.returncode != 0:
            last = ([ln.strip() for ln in done.stderr.splitlines() if ln.strip()] or ["?"])[-1]
            hint = "" if wheelhouse else " (offline? pass --wheelhouse DIR)"
            raise InstallError(f"pip could not fetch the plug-in's packages: {last}{hint}")
    elif wheelhouse is not None:
        unpack_wheels(wheelhouse, dest)
    else:
        raise InstallError(
            f"pip is not available for {python}: install it (Debian/Ubuntu: sudo apt install "
            "python3-pip), or pass --wheelhouse DIR holding the wheels, or download the "
            "release zip and unpack it into your GIMP profile's plug-ins folder."
        )
    shutil.rmtree(dest / "bin", ignore_errors=True)  # console scripts with this host's shebang
    for junk in [*dest.rglob("__pycache__"), *dest.rglob("*.py[co]")]:
        shutil.rmtree(junk) if junk.is_dir() else junk.unlink(missing_ok=True)
    check_vendor(dest)


def admits(spec: str, version: tuple[int, ...]) -> bool:
    """Whether a Requires-Python specifier admits ``version`` (release numbers only)."""

    def pad(v: tuple[int, ...]) -> tuple[int, ...]:
        return (v + (0, 0, 0, 0))[:4]

    for clause in filter(None, (c.strip() for c in spec.split(","))):
        match = re.fullmatch(r"(~=|===|==|!=|<=|>=|<|>)\s*(\d+(?:\.\d+)*)(\.\*)?", clause)
        if not match:
            raise InstallError(f"cannot read Requires-Python clause {clause!r}")
        op, text, star = match.groups()
        want = tuple(int(x) for x in text.split("."))
        if star and op in ("==", "!="):
            ok = (version[: len(want)] == want) == (op == "==")
        else:
            ok = _COMPARE[op](pad(version), pad(want))
        if op == "~=":
            ok = ok and version[: len(want) - 1] == want[:-1]
        if not ok:
            return False
    return True


def check_vendor(vendor: Path) -> list[str]:
    """Every distribution must run on 3.10-3.14, and nothing any of them needs is missing."""
    present: set[str] = set()
    needed = {canonical(pin.split("==")[0]) for pin in VENDOR_PINS}
    for meta in vendor.glob("*.dist-info/METADATA"):
        fields: dict[str, list[str]] = {}
        for line in meta.read_text(encoding="utf-8").split("\n\n", 1)[0].splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), []).append(value.strip())
        name = canonical(fields.get("Name", [meta.parent.name])[0])
        requires = fields.get("Requires-Python", [""])[0]
        for target in TARGET_PYTHONS:
            if requires and not admits(requires, target):
                raise InstallError(
                    f"vendored {name} requires Python {requires}, which "
                    f"excludes {target[0]}.{target[1]}"
                )
        present.add(name)
        needed.update(
            canonical(re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0])
            for req in fields.get("Requires-Dist", [])
            if "extra" not in req
        )
    if needed - present:
        raise InstallError(f"vendor/ is incomplete, missing: {', '.join(sorted(needed - present))}")
    return sorted(present)


@contextlib.contextmanager
def vendor_dir(
    prebuilt: Path | None, wheelhouse: Path | None, python: str, *, verbose: bool = False
) -> Iterator[Path]:
    """vendor/ is built once per run, in a temp folder, and copied into every profile."""
    if prebuilt is not None:
        yield prebuilt
        return
    with tempfile.TemporaryDirectory(prefix="flux-outpaint-vendor-") as tmp:
        print("Fetching httpx and its dependencies (pure Python, for GIMP's Python 3.10+)...")
        build_vendor(Path(tmp) / "vendor", wheelhouse, python, verbose=verbose)
        yield Path(tmp) / "vendor"
