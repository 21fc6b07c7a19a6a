#!/usr/bin/env python3
"""Install the flux-outpaint plug-in into every GIMP 3 profile: ``python3 install.py [--help]``.

Standard library only, Python 3.9+: it runs with whatever Python the user has, which is almost
never the one GIMP uses, so what it installs is pure Python for GIMP's Python 3.10-3.14.
Options: --list, --dry-run, --uninstall, --dev, --gimp-dir DIR, --wheelhouse DIR, --zip FILE,
--verbose, --set-key (the key comes from stdin or a hidden prompt, never from the command line).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from install_vendor import InstallError, pip_command, vendor_dir

PLUGIN = "flux-outpaint"
ENTRY = f"{PLUGIN}.py"
SHEBANG = b"#!/usr/bin/env python3"
MENU_HINT = "restart GIMP, then Filters \u25b8 Generative \u25b8 Outpaint (FLUX.2 pro)\u2026"
REPO_SOURCE = Path(__file__).resolve().parent / "plugin" / PLUGIN
_VERSION_DIR = re.compile(r"^(\d+)\.(\d+)$")


def os_error_line(exc: OSError) -> str:
    return f"cannot write {exc.filename}: {exc.strerror or exc}" if exc.filename else str(exc)


@dataclass(frozen=True)
class Profile:
    path: Path  # the GIMP profile folder, the one holding plug-ins/
    version: str  # "3.0", "3.2"; "" when the folder name does not say
    origin: str  # "config", "Snap", "GIMP3_DIRECTORY" or "--gimp-dir"

    @property
    def target(self) -> Path:
        return self.path / "plug-ins" / PLUGIN

    def describe(self) -> str:
        return f"GIMP {self.version or '3'} profile ({self.origin}) {self.path}"


@dataclass(frozen=True)
class Discovery:
    profiles: tuple[Profile, ...]  # existing 3.x profiles
    legacy: tuple[Path, ...]  # GIMP 2.x profiles: reported, never touched
    searched: tuple[Path, ...]  # folders looked in, for the "none found" message


def config_roots(platform: str, env: Mapping[str, str], home: Path) -> list[tuple[str, Path]]:
    """The folders holding GIMP's ``<major.minor>`` profile folders on ``platform``."""
    if platform.startswith("win"):
        return [("config", Path(env.get("APPDATA") or home / "AppData" / "Roaming") / "GIMP")]
    if platform == "darwin":
        return [("config", home / "Library" / "Application Support" / "GIMP")]
    xdg = env.get("XDG_CONFIG_HOME", "")
    # Flatpak GIMP bind-mounts the host's ~/.config/GIMP over its sandbox copy, so the host
    # folder is the one to write: files put in ~/.var/app/org.gimp.GIMP/... stay hidden.
    base = Path(xdg) if os.path.isabs(xdg) else home / ".config"
    snap = home / "snap" / "gimp" / "current"
    return [("config", base / "GIMP"), ("Snap", snap / "GIMP"), ("Snap", snap / ".config/GIMP")]


def find_profiles(platform: str, env: Mapping[str, str], home: Path) -> Discovery:
    override = env.get("GIMP3_DIRECTORY", "")
    if override:  # GIMP uses it as the profile itself, relative to home when relative
        path = Path(override) if os.path.isabs(override) else home / override
        return Discovery(
            (Profile(path, "", "GIMP3_DIRECTORY"),) if path.is_dir() else (), (), (path,)
        )
    profiles: list[Profile] = []
    legacy: list[Path] = []
    seen: set[Path] = set()
    roots = config_roots(platform, env, home)
    for origin, root in roots:
        versions = []
        for child in root.iterdir() if root.is_dir() else ():
            match = _VERSION_DIR.match(child.name)
            if match and child.is_dir() and child.resolve() not in seen:
                seen.add(child.resolve())
                versions.append((int(match[1]), int(match[2]), child))
        for major, minor, child in sorted(versions):
            if major == 3:
                profiles.append(Profile(child, f"{major}.{minor}", origin))
            elif major == 2:
                legacy.append(child)
    return Discovery(tuple(profiles), tuple(legacy), tuple(root for _, root in roots))


def explicit_profiles(dirs: Iterable[Path]) -> Discovery:
    """Profiles named with --gimp-dir: like discovered ones, they must already exist."""
    profiles = []
    for raw in dirs:
        path = raw.expanduser()
        path = path.parent if path.name == "plug-ins" else path  # a common slip
        if not path.is_dir():
            raise InstallError(f"--gimp-dir {raw}: no such folder (start GIMP 3 once first)")
        match = _VERSION_DIR.match(path.name)
        if match and match[1] == "2":
            raise InstallError(f"{path} is a GIMP {path.name} profile: this plug-in needs GIMP 3")
        profiles.append(Profile(path, path.name if match else "", "--gimp-dir"))
    return Discovery(tuple(profiles), (), ())


def no_profile_message(found: Discovery) -> str:
    if found.legacy:
        return (
            f"Only GIMP 2.10 was found ({', '.join(map(str, found.legacy))}): this plug-in "
            "needs GIMP 3.0 or newer; install GIMP 3, start it once, then run this again."
        )
    return (
        f"No GIMP 3 profile found (looked in {', '.join(map(str, found.searched))}): start "
        "GIMP 3 once so it creates its profile, then run this again, or pass --gimp-dir DIR."
    )


# -- the plug-in folder ------------------------------------------------------------------


def plugin_version(folder: Path) -> str:
    if (folder / "VERSION").is_file():
        return (folder / "VERSION").read_text(encoding="utf-8").strip() or "unknown version"
    init = folder / "flux_outpaint" / "__init__.py"
    text = init.read_text(encoding="utf-8") if init.is_file() else ""
    match = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", text, re.M)
    return match[1] if match else "unknown version"


def check_source(source: Path) -> None:
    if not (source / ENTRY).is_file():
        raise InstallError(f"plug-in source {source} has no {ENTRY}: is this a complete checkout?")


def normalised_entry(data: bytes) -> bytes:
    """LF endings, no BOM, our shebang: on Linux GIMP picks the interpreter from line 1."""
    data = data.removeprefix(b"\xef\xbb\xbf").replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if data.startswith(b"#!"):
        data = data.partition(b"\n")[2]
    return SHEBANG + b"\n" + data


def stage_plugin(source: Path, vendor: Path, dest: Path) -> None:
    """Fill ``dest`` with a ready-to-run copy: sources, fresh vendor/, fixed entry file."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        top = Path(folder) == source
        return {
            n
            for n in names
            if n == "__pycache__"
            or n.endswith((".pyc", ".pyo"))
            or n.startswith(".")
            or n.endswith(".egg-info")
            or (top and n == "vendor")
        }

    shutil.copytree(source, dest, ignore=ignore, dirs_exist_ok=True)
    shutil.copytree(vendor, dest / "vendor")
    entry = dest / ENTRY
    entry.write_bytes(normalised_entry(entry.read_bytes()))
    os.chmod(entry, 0o755)
    os.chmod(dest, 0o755)  # mkdtemp made it 0700


# -- putting it in place -----------------------------------------------------------------


def remove_path(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


def swap_into_place(new: Path, target: Path) -> None:
    """Old copy renamed away, new one renamed in: GIMP never sees a half-written folder."""
    old = None
    if target.is_symlink() or target.exists():
        old = target.with_name(f".{PLUGIN}.old-{secrets.token_hex(4)}")
        os.rename(target, old)
    try:
        os.rename(new, target)
    except OSError:
        if old is not None:
            os.rename(old, target)
        raise
    if old is not None:
        remove_path(old)


def install_profile(profile: Profile, source: Path, vendor: Path, dev: bool) -> None:
    plugins = profile.path / "plug-ins"
    plugins.mkdir(exist_ok=True)  # the profile exists; only its plug-ins/ may be missing
    for leftover in [*plugins.glob(f".{PLUGIN}.new-*"), *plugins.glob(f".{PLUGIN}.old-*")]:
        remove_path(leftover)  # from an interrupted run; dot-names, so GIMP never saw them
    if dev:
        staging = plugins / f".{PLUGIN}.new-{secrets.token_hex(4)}"
        os.symlink(source.resolve(), staging, target_is_directory=True)
    else:
        staging = Path(tempfile.mkdtemp(prefix=f".{PLUGIN}.new-", dir=plugins))
        try:
            stage_plugin(source, vendor, staging)
        except BaseException:
            remove_path(staging)
            raise
    swap_into_place(staging, profile.target)
    os.utime(profile.target / ENTRY)  # GIMP queries a plug-in again only when its mtime changes


def uninstall_profile(profile: Profile) -> bool:
    target = profile.target
    if target.is_symlink():
        target.unlink()
    elif target.exists():
        gone = target.with_name(f".{PLUGIN}.old-{secrets.token_hex(4)}")
        os.rename(target, gone)  # disappears at once for GIMP, however long the delete takes
        remove_path(gone)
    else:
        return False
    return True


def dev_vendor(source: Path, vendor: Path) -> None:
    """--dev: vendor/ goes into the (git-ignored) source folder the profiles link to."""
    fresh = source / f".vendor.new-{secrets.token_hex(4)}"
    shutil.copytree(vendor, fresh)
    swap_into_place(fresh, source / "vendor")
    entry = source / ENTRY
    os.chmod(entry, 0o755)
    if normalised_entry(entry.read_bytes()) != entry.read_bytes():
        print(f"Warning: {entry} needs LF endings, no BOM and line 1 '{SHEBANG.decode()}'.")


def build_zip(source: Path, vendor: Path, out: Path) -> int:
    """Release archive: one flux-outpaint/ folder, unpacked straight into plug-ins/."""
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / PLUGIN
        stage_plugin(source, vendor, staged)
        out.parent.mkdir(parents=True, exist_ok=True)
        files = 0
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(staged.rglob("*")):
                info = zipfile.ZipInfo(
                    path.relative_to(tmp).as_posix() + "/" * path.is_dir(),
                    date_time=(2020, 1, 1, 0, 0, 0),
                )
                info.create_system = 3  # Unix: unzip then applies the mode bits below
                info.compress_type = zipfile.ZIP_DEFLATED
                if path.is_dir():
                    info.external_attr = (0o40755 << 16) | 0x10
                    archive.writestr(info, b"")
                    continue
                executable = path == staged / ENTRY
                info.external_attr = (0o100755 if executable else 0o100644) << 16
                archive.writestr(info, path.read_bytes())
                files += 1
    return files


# -- --list and --set-key ----------------------------------------------------------------


def probe_gimps(env: Mapping[str, str]) -> list[str]:
    path = env.get("PATH", os.defpath)
    found = [
        f"{name} ({exe})"
        for name in ("gimp", "gimp-3.0", "gimp-3.2")
        if (exe := shutil.which(name, path=path))
    ]
    flatpak = shutil.which("flatpak", path=path)
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        info = (
            subprocess.run(
                [flatpak, "info", "org.gimp.GIMP"], capture_output=True, text=True, timeout=20
            )
            if flatpak
            else None
        )
        if info is not None and info.returncode == 0:
            version = re.search(r"^\s*Version:\s*(\S+)", info.stdout, re.M)
            found.append(f"Flatpak org.gimp.GIMP {version[1] if version else ''}".rstrip())
    return found


def list_report(found: Discovery, env: Mapping[str, str]) -> list[str]:
    gimps = probe_gimps(env)
    lines = [
        f"GIMP programs: {', '.join(gimps) or 'none found on PATH'}",
        "Searched: " + ", ".join(f"{p}{'' if p.is_dir() else ' (absent)'}" for p in found.searched),
    ]
    for profile in found.profiles:
        target = profile.target
        state = "plug-in not installed"
        if target.is_symlink():
            state = f"{PLUGIN} {plugin_version(target)} (dev link to {os.readlink(target)})"
        elif target.is_dir():
            state = f"{PLUGIN} {plugin_version(target)} installed"
        lines.append(f"  {profile.describe()}: {state}")
    lines += [f"  GIMP {p.name} profile {p}: not supported (needs GIMP 3)" for p in found.legacy]
    if not found.profiles and not found.legacy:
        lines.append("  no GIMP profile found")
    return lines


def set_key(source: Path, stdin: TextIO) -> str:
    """The key comes from a pipe or a hidden prompt: argv would show it in ps and history."""
    raw = getpass.getpass("fal API key (input hidden): ") if stdin.isatty() else stdin.read()
    key = raw.strip()
    if not key or any(ch.isspace() for ch in key):
        raise InstallError("no key stored: expected one fal API key on one line")
    sys.path[:0] = [str(source / "vendor"), str(source)]
    try:  # the plug-in's own settings module: one rule for where the key file lives
        from flux_outpaint.settings import save_api_key
    except ImportError as exc:
        raise InstallError(f"cannot load flux_outpaint.settings from {source}: {exc}") from None
    try:
        where = save_api_key(key)
    except Exception as exc:  # noqa: BLE001 - its own message, minus the key, is the report
        raise InstallError(str(exc).replace(key, "***") or type(exc).__name__) from None
    if where and Path(where).is_file():
        os.chmod(where, 0o600)  # whoever wrote it, the key file is private
    return f"Saved the fal API key{f' to {where}' if where else ''} (readable only by you)."


# -- command line ------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="install.py",
        description="Install the flux-outpaint "
        "plug-in into every GIMP 3 profile (start GIMP 3 once first).",
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--list", action="store_true", help="show GIMPs, profiles, installs")
    action.add_argument("--uninstall", action="store_true", help="remove it from every profile")
    action.add_argument("--zip", type=Path, metavar="FILE", help="build the release archive")
    action.add_argument(
        "--set-key",
        action="store_true",
        help="store the fal API key (from stdin, or a hidden prompt)",
    )
    parser.add_argument("--dev", action="store_true", help="link the repo's plug-in folder")
    parser.add_argument("--dry-run", action="store_true", help="print what would happen")
    parser.add_argument(
        "--verbose", action="store_true", help="show pip's own output while fetching packages"
    )
    parser.add_argument(
        "--gimp-dir",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a GIMP profile folder (the one containing plug-ins/); repeatable",
    )
    parser.add_argument(
        "--wheelhouse",
        type=Path,
        metavar="DIR",
        help="install the dependencies offline from the wheels in DIR",
    )
    parser.add_argument("--source", type=Path, default=REPO_SOURCE, help=argparse.SUPPRESS)
    args, extra = parser.parse_known_args(argv)
    if extra:  # not echoed: a key pasted on the command line must not be printed back
        if any(a.startswith("-") for a in extra):
            parser.error("unknown option (see --help)")
        parser.error("unexpected arguments (--set-key reads the key from stdin or a prompt)")
    if args.dev and (args.list or args.uninstall or args.zip or args.set_key):
        parser.error("--dev only applies to installing")
    if args.wheelhouse is not None and not args.wheelhouse.is_dir():
        parser.error(f"--wheelhouse {args.wheelhouse}: not a folder")
    return args


def install_all(
    args: argparse.Namespace, found: Discovery, python: str, vendor: Path | None
) -> int:
    source: Path = args.source
    check_source(source)
    version = plugin_version(source)
    if args.dry_run:
        print(f"Would run: {' '.join(pip_command(python, Path('TMP'), args.wheelhouse))}")
        for profile in found.profiles:
            print(
                f"Would {'link' if args.dev else 'install'} {PLUGIN} {version} into "
                f"{profile.target}"
            )
        return 0
    failed = 0
    with vendor_dir(vendor, args.wheelhouse, python, verbose=args.verbose) as built:
        if args.dev:
            dev_vendor(source, built)
        for profile in found.profiles:
            try:
                install_profile(profile, source, built, args.dev)
            except OSError as exc:
                failed += 1
                print(f"Error: {profile.describe()}: {os_error_line(exc)}", file=sys.stderr)
                continue
            print(
                f"Linked {profile.target} -> {source}"
                if args.dev
                else f"Installed {PLUGIN} {version} into {profile.target}"
            )
    if failed < len(found.profiles):
        print(f"Done: {MENU_HINT}")
    return 1 if failed else 0


def run(
    args: argparse.Namespace,
    platform: str,
    env: Mapping[str, str],
    home: Path,
    python: str,
    vendor: Path | None,
    stdin: TextIO,
) -> int:
    if args.set_key:
        print(
            "Would read the fal API key and store it (mode 0600)."
            if args.dry_run
            else set_key(args.source, stdin)
        )
        return 0
    if args.zip:
        check_source(args.source)
        if args.dry_run:
            print(f"Would write {args.zip} from {args.source} with a fresh vendor/")
            return 0
        with vendor_dir(vendor, args.wheelhouse, python, verbose=args.verbose) as built:
            files = build_zip(args.source, built, args.zip)
        print(f"Wrote {args.zip} ({files} files): unzip it inside a GIMP 3 profile's plug-ins/.")
        return 0
    found = (
        explicit_profiles(args.gimp_dir) if args.gimp_dir else find_profiles(platform, env, home)
    )
    if args.list:
        print("\n".join(list_report(found, env)))
        return 0
    if not found.profiles:
        raise InstallError(no_profile_message(found))
    for legacy in found.legacy:
        print(f"Note: GIMP {legacy.name} profile {legacy} skipped (this plug-in needs GIMP 3).")
    for snap in (p for p in found.profiles if p.origin == "Snap"):
        print(
            f"Note: found {snap.describe()}; Snap is best effort: if the filter is missing, "
            "check Edit \u25b8 Preferences \u25b8 Folders \u25b8 Plug-ins."
        )
    if not args.uninstall:
        return install_all(args, found, python, vendor)
    for profile in found.profiles:
        if args.dry_run:
            print(f"Would remove {profile.target}")
        else:
            print(
                f"Removed {profile.target}"
                if uninstall_profile(profile)
                else f"Not installed in {profile.path}"
            )
    return 0


def main(
    argv: list[str] | None = None,
    *,
    platform: str = sys.platform,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
    python: str = sys.executable,
    vendor: Path | None = None,
    stdin: TextIO | None = None,
) -> int:
    """Entry point; the keyword arguments let tests stand in for another machine."""
    args = parse_args(argv)
    for stream in (sys.stdout, sys.stderr):  # a cp1252 console must not crash on "▸"
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    try:
        return run(
            args,
            platform,
            os.environ if env is None else env,
            Path.home() if home is None else home,
            python,
            vendor,
            sys.stdin if stdin is None else stdin,
        )
    except InstallError as exc:
        print(f"Error: {exc}", file=sys.stderr)
    except OSError as exc:
        print(f"Error: {os_error_line(exc)}", file=sys.stderr)
    except KeyboardInterrupt:
        print("Cancelled.", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
