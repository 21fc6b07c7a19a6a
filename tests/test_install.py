"""install.py: profile discovery on every platform layout, atomic placement, the entry-file
rules, uninstall, dry runs, --dev, --list, the release zip and --set-key.

vendor/ is a stand-in here; the real one is built and run in test_install_vendor.py."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest
import pythons
from script_modules import load_install

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # install.py imports its sibling install_vendor.py
    sys.path.insert(0, str(ROOT))


inst = load_install()

ENTRY_CRLF = b"\xef\xbb\xbf#!/usr/bin/env python\r\nimport sys\r\nprint('entry')\r\n"


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A fake plug-in folder with everything the copy must fix or leave out."""
    src = tmp_path / "src" / "flux-outpaint"
    (src / "flux_outpaint" / "__pycache__").mkdir(parents=True)
    (src / "gimp_glue").mkdir()
    (src / "vendor" / "stale_pkg").mkdir(parents=True)
    (src / "flux-outpaint.py").write_bytes(ENTRY_CRLF)
    (src / "flux_outpaint" / "__init__.py").write_text('__version__ = "1.2.3"\n')
    (src / "flux_outpaint" / "core.py").write_text("X = 1\n")
    (src / "flux_outpaint" / "__pycache__" / "core.cpython-311.pyc").write_bytes(b"pyc")
    (src / "flux_outpaint" / "old.pyc").write_bytes(b"pyc")
    (src / "gimp_glue" / "__init__.py").write_text("")
    (src / "vendor" / "stale_pkg" / "__init__.py").write_text("")
    (src / ".DS_Store").write_bytes(b"x")
    return src


@pytest.fixture
def vendor(tmp_path: Path) -> Path:
    """A stand-in for the pip-built vendor/ (the real one: test_install_vendor.py)."""
    v = tmp_path / "prebuilt" / "vendor"
    (v / "marker_pkg").mkdir(parents=True)
    (v / "marker_pkg" / "__init__.py").write_text("MARK = 1\n")
    return v


def run_main(
    args: list[str],
    home: Path,
    source: Path,
    vendor: Path | None,
    *,
    platform: str = "linux",
    env: dict[str, str] | None = None,
    stdin: io.StringIO | None = None,
) -> int:
    return inst.main(
        [*args, "--source", str(source)],
        platform=platform,
        env=env or {},
        home=home,
        vendor=vendor,
        stdin=stdin,
    )


def tree(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every path under root with its mode, mtime and content: a snapshot to compare."""
    if not root.exists():
        return {}
    snap = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        data = p.read_bytes() if p.is_file() and not p.is_symlink() else b""
        snap[str(p.relative_to(root))] = (st.st_mode, st.st_mtime_ns, data)
    return snap


# -- discovery on every platform layout --------------------------------------------------

LAYOUTS = {
    # name: (platform, env factory, profile root relative to home or tmp)
    "linux": ("linux", lambda home: {}, lambda home: home / ".config" / "GIMP"),
    "linux-xdg": (
        "linux",
        lambda home: {"XDG_CONFIG_HOME": str(home.parent / "xdg")},
        lambda home: home.parent / "xdg" / "GIMP",
    ),
    "flatpak": ("linux", lambda home: {}, lambda home: home / ".config" / "GIMP"),
    "snap": ("linux", lambda home: {}, lambda home: home / "snap/gimp/current/GIMP"),
    "snap-config": ("linux", lambda home: {}, lambda home: home / "snap/gimp/current/.config/GIMP"),
    "windows": (
        "win32",
        lambda home: {"APPDATA": str(home / "AppData" / "Roaming")},
        lambda home: home / "AppData" / "Roaming" / "GIMP",
    ),
    "macos": ("darwin", lambda home: {}, lambda home: home / "Library/Application Support/GIMP"),
}
CASES = [(name, n) for name in LAYOUTS for n in (0, 1, 2)]


@pytest.mark.parametrize(("layout", "count"), CASES, ids=[f"{a}-{b}" for a, b in CASES])
def test_installs_into_every_existing_3x_profile_and_creates_none(
    layout, count, tmp_path, source, vendor, capsys
):
    platform, make_env, make_root = LAYOUTS[layout]
    home = tmp_path / "home"
    home.mkdir()
    root = make_root(home)
    versions = ["3.0", "3.2"][:count]
    for v in versions:
        (root / v).mkdir(parents=True)
    if count:
        (root / "3.0" / "plug-ins").mkdir()  # 3.2 has no plug-ins/ yet: that one is created
    decoy = home / ".var/app/org.gimp.GIMP/config/GIMP/3.0"
    if layout == "flatpak":
        decoy.mkdir(parents=True)

    rc = run_main([], home, source, vendor, platform=platform, env=make_env(home))
    out, err = capsys.readouterr()

    if count == 0:
        assert rc == 1
        assert "No GIMP 3 profile found" in err and "start GIMP 3 once" in err
        assert len(err.strip().splitlines()) == 1
        assert not root.exists()
        return
    assert rc == 0, err
    assert sorted(p.name for p in root.iterdir()) == versions  # nothing new at version level
    for v in versions:
        entry = root / v / "plug-ins" / "flux-outpaint" / "flux-outpaint.py"
        assert entry.is_file()
        assert f"into {entry.parent}" in out
    assert "restart GIMP, then Filters \u25b8 Generative \u25b8 Outpaint (FLUX.2 pro)" in out
    if layout.startswith("snap"):
        assert "Snap is best effort" in out
    if layout == "flatpak":
        assert list(decoy.iterdir()) == []


@pytest.mark.parametrize("exists", [False, True])
def test_gimp3_directory_replaces_every_other_location(exists, tmp_path, source, vendor, capsys):
    home = tmp_path / "home"
    (home / ".config" / "GIMP" / "3.0").mkdir(parents=True)
    custom = tmp_path / "custom-profile"
    if exists:
        custom.mkdir()
    rc = run_main([], home, source, vendor, env={"GIMP3_DIRECTORY": str(custom)})
    _, err = capsys.readouterr()
    assert list((home / ".config" / "GIMP" / "3.0").iterdir()) == []
    if exists:
        assert rc == 0, err
        assert (custom / "plug-ins" / "flux-outpaint" / "flux-outpaint.py").is_file()
    else:
        assert rc == 1 and str(custom) in err
        assert not custom.exists()


def test_relative_gimp3_directory_is_relative_to_home(tmp_path):
    (tmp_path / "rel" / "prof").mkdir(parents=True)
    found = inst.find_profiles("linux", {"GIMP3_DIRECTORY": "rel/prof"}, tmp_path)
    assert [p.path for p in found.profiles] == [tmp_path / "rel" / "prof"]


def test_profiles_are_sorted_numerically_and_odd_names_ignored(tmp_path):
    root = tmp_path / ".config" / "GIMP"
    for name in ("3.10", "3.2", "3.0", "3.x", "backup", "4"):
        (root / name).mkdir(parents=True)
    (root / "3.4").write_text("a file, not a profile")
    found = inst.find_profiles("linux", {}, tmp_path)
    assert [p.version for p in found.profiles] == ["3.0", "3.2", "3.10"]


def test_only_gimp_210_says_so_in_one_line(tmp_path, source, vendor, capsys):
    (tmp_path / ".config" / "GIMP" / "2.10").mkdir(parents=True)
    rc = run_main([], tmp_path, source, vendor)
    _, err = capsys.readouterr()
    assert rc == 1
    assert err.strip().splitlines() == [err.strip()]
    assert "Only GIMP 2.10" in err and "needs GIMP 3" in err
    assert list((tmp_path / ".config" / "GIMP" / "2.10").iterdir()) == []


def test_gimp_210_next_to_3_is_noted_and_left_alone(tmp_path, source, vendor, capsys):
    for v in ("2.10", "3.0"):
        (tmp_path / ".config" / "GIMP" / v).mkdir(parents=True)
    assert run_main([], tmp_path, source, vendor) == 0
    out = capsys.readouterr().out
    assert "GIMP 2.10 profile" in out and "skipped" in out
    assert list((tmp_path / ".config" / "GIMP" / "2.10").iterdir()) == []


def test_gimp_dir_is_repeatable_and_replaces_discovery(tmp_path, source, vendor, capsys):
    (tmp_path / ".config" / "GIMP" / "3.0").mkdir(parents=True)
    a, b = tmp_path / "a", tmp_path / "b" / "3.2"
    a.mkdir()
    (b / "plug-ins").mkdir(parents=True)
    # b is given as its plug-ins/ folder, a common slip the installer corrects
    rc = run_main(
        ["--gimp-dir", str(a), "--gimp-dir", str(b / "plug-ins")], tmp_path, source, vendor
    )
    assert rc == 0, capsys.readouterr().err
    assert (a / "plug-ins" / "flux-outpaint" / "flux-outpaint.py").is_file()
    assert (b / "plug-ins" / "flux-outpaint" / "flux-outpaint.py").is_file()
    assert not (b / "plug-ins" / "plug-ins").exists()
    assert list((tmp_path / ".config" / "GIMP" / "3.0").iterdir()) == []


@pytest.mark.parametrize(
    ("folder", "message"), [("nope/3.2", "no such folder"), ("GIMP/2.10", "needs GIMP 3")]
)
def test_gimp_dir_refusals_write_nothing(folder, message, tmp_path, source, vendor, capsys):
    given = tmp_path / folder
    if folder.endswith("2.10"):
        given.mkdir(parents=True)
    before = tree(tmp_path)
    assert run_main(["--gimp-dir", str(given)], tmp_path, source, vendor) == 1
    assert message in capsys.readouterr().err
    assert tree(tmp_path) == before


# -- what gets installed -----------------------------------------------------------------


@pytest.fixture
def home_30(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / ".config" / "GIMP" / "3.0" / "plug-ins" / "other-plugin").mkdir(parents=True)
    (
        home / ".config" / "GIMP" / "3.0" / "plug-ins" / "other-plugin" / "other-plugin.py"
    ).write_text("x")
    return home


def target_of(home: Path) -> Path:
    return home / ".config" / "GIMP" / "3.0" / "plug-ins" / "flux-outpaint"


def test_copy_fixes_entry_file_skips_junk_and_rebuilds_vendor(home_30, source, vendor):
    assert run_main([], home_30, source, vendor) == 0
    target = target_of(home_30)
    entry = target / "flux-outpaint.py"
    assert entry.read_bytes() == b"#!/usr/bin/env python3\nimport sys\nprint('entry')\n"
    assert stat.S_IMODE(entry.stat().st_mode) == 0o755
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert (target / "flux_outpaint" / "core.py").read_text() == "X = 1\n"
    assert (target / "gimp_glue" / "__init__.py").is_file()
    assert (target / "vendor" / "marker_pkg" / "__init__.py").is_file()
    assert not (target / "vendor" / "stale_pkg").exists()
    assert not list(target.rglob("__pycache__")) and not list(target.rglob("*.pyc"))
    assert not (target / ".DS_Store").exists()
    assert (source / "flux-outpaint.py").read_bytes() == ENTRY_CRLF  # the source is untouched


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (b"print(1)\n", b"#!/usr/bin/env python3\nprint(1)\n"),
        (b"#!/usr/bin/python3.12\r\nprint(1)\r\n", b"#!/usr/bin/env python3\nprint(1)\n"),
        (b"\xef\xbb\xbf#!/usr/bin/env python3\rprint(1)\r", b"#!/usr/bin/env python3\nprint(1)\n"),
        (b"#!/usr/bin/env python3\nprint(1)\n", b"#!/usr/bin/env python3\nprint(1)\n"),
        (b"#!python", b"#!/usr/bin/env python3\n"),
    ],
)
def test_entry_normalisation(given, expected):
    assert inst.normalised_entry(given) == expected


@pytest.mark.parametrize("mode", [[], ["--dev"]])
def test_entry_file_is_touched_so_gimp_queries_it_again(mode, home_30, source, vendor):
    os.utime(source / "flux-outpaint.py", (1_000_000_000, 1_000_000_000))
    assert run_main(mode, home_30, source, vendor) == 0
    assert (target_of(home_30) / "flux-outpaint.py").stat().st_mtime > 1_000_000_000


def test_reinstall_replaces_old_copy_and_leaves_no_temp_folders(home_30, source, vendor):
    assert run_main([], home_30, source, vendor) == 0
    target = target_of(home_30)
    (target / "from-old-version.py").write_text("old")
    plugins = target.parent
    (plugins / ".flux-outpaint.new-dead").mkdir()  # an interrupted earlier run
    (plugins / ".flux-outpaint.old-dead").mkdir()
    (source / "flux_outpaint" / "core.py").write_text("X = 2\n")
    assert run_main([], home_30, source, vendor) == 0
    assert not (target / "from-old-version.py").exists()
    assert (target / "flux_outpaint" / "core.py").read_text() == "X = 2\n"
    assert sorted(p.name for p in plugins.iterdir()) == ["flux-outpaint", "other-plugin"]
    assert (plugins / "other-plugin" / "other-plugin.py").read_text() == "x"


def test_failed_build_keeps_the_old_copy_whole(home_30, source, vendor, monkeypatch, capsys):
    assert run_main([], home_30, source, vendor) == 0
    before = tree(target_of(home_30))

    def half_copy(src: Path, vend: Path, dest: Path) -> None:
        (dest / "flux-outpaint.py").write_text("half")
        raise OSError(28, "No space left on device", str(dest / "vendor"))

    monkeypatch.setattr(inst, "stage_plugin", half_copy)
    assert run_main([], home_30, source, vendor) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and len(err.strip().splitlines()) == 1
    assert tree(target_of(home_30)) == before
    assert sorted(p.name for p in target_of(home_30).parent.iterdir()) == [
        "flux-outpaint",
        "other-plugin",
    ]


def test_swap_puts_the_old_copy_back_when_the_new_one_cannot_move_in(tmp_path, monkeypatch):
    target, new = tmp_path / "flux-outpaint", tmp_path / ".flux-outpaint.new-x"
    target.mkdir()
    (target / "old.txt").write_text("old")
    new.mkdir()
    real_rename = os.rename

    def failing_rename(src, dst):
        if Path(src) == new:
            raise OSError(13, "Permission denied", str(dst))
        real_rename(src, dst)

    monkeypatch.setattr(inst.os, "rename", failing_rename)
    with pytest.raises(OSError):
        inst.swap_into_place(new, target)
    assert (target / "old.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".flux-outpaint.new-x", "flux-outpaint"]


def test_unwritable_plug_ins_folder_is_one_error_line(tmp_path, source, vendor, capsys):
    profile = tmp_path / ".config" / "GIMP" / "3.0"
    profile.mkdir(parents=True)
    (profile / "plug-ins").write_text("not a folder")  # fails even for root, unlike chmod
    assert run_main([], tmp_path, source, vendor) == 1
    captured = capsys.readouterr()
    assert len(captured.err.strip().splitlines()) == 1 and "plug-ins" in captured.err
    assert "Done" not in captured.out


def test_permission_denied_is_reported_with_its_path(home_30, source, vendor, monkeypatch, capsys):
    def denied(**kw):
        raise PermissionError(13, "Permission denied", kw["dir"])

    monkeypatch.setattr(inst.tempfile, "mkdtemp", denied)
    assert run_main([], home_30, source, vendor) == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err]
    assert "Permission denied" in err and "plug-ins" in err


def test_source_without_entry_file_is_refused(home_30, tmp_path, vendor, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_main([], home_30, empty, vendor) == 1
    assert "has no flux-outpaint.py" in capsys.readouterr().err
    assert not target_of(home_30).exists()


# -- uninstall, dry run, dev ---------------------------------------------------------------


def test_uninstall_removes_every_copy_and_nothing_else(tmp_path, source, vendor, capsys):
    for v in ("3.0", "3.2"):
        (tmp_path / ".config" / "GIMP" / v / "plug-ins" / "keep").mkdir(parents=True)
    assert run_main([], tmp_path, source, vendor) == 0
    assert run_main(["--uninstall"], tmp_path, source, vendor) == 0
    assert capsys.readouterr().out.count("Removed ") == 2
    for v in ("3.0", "3.2"):
        assert sorted(p.name for p in (tmp_path / ".config/GIMP" / v / "plug-ins").iterdir()) == [
            "keep"
        ]
    assert run_main(["--uninstall"], tmp_path, source, vendor) == 0
    assert "Not installed" in capsys.readouterr().out


@pytest.mark.parametrize("args", [[], ["--dev"], ["--uninstall"], ["--zip", "ZIP"]])
def test_dry_run_writes_nothing(args, tmp_path, source, vendor, capsys):
    home = tmp_path / "home"
    (home / ".config" / "GIMP" / "3.0").mkdir(parents=True)
    (home / ".config" / "GIMP" / "3.2" / "plug-ins").mkdir(parents=True)
    assert run_main(["--gimp-dir", str(home / ".config/GIMP/3.2")], home, source, vendor) == 0
    args = [str(tmp_path / "out.zip") if a == "ZIP" else a for a in args]
    before_home, before_src = tree(home), tree(source)
    assert run_main([*args, "--dry-run"], home, source, vendor) == 0
    assert "Would " in capsys.readouterr().out
    assert tree(home) == before_home and tree(source) == before_src
    assert not (tmp_path / "out.zip").exists()


def test_dev_links_the_source_and_builds_vendor_inside_it(home_30, source, vendor, capsys):
    os.chmod(source / "flux-outpaint.py", 0o644)
    assert run_main(["--dev"], home_30, source, vendor) == 0
    target = target_of(home_30)
    assert target.is_symlink() and target.resolve() == source.resolve()
    assert (source / "vendor" / "marker_pkg" / "__init__.py").is_file()
    assert not (source / "vendor" / "stale_pkg").exists()
    assert stat.S_IMODE((source / "flux-outpaint.py").stat().st_mode) == 0o755
    out = capsys.readouterr().out
    assert "needs LF endings" in out  # the CRLF source is reported, not rewritten
    assert [p.name for p in source.iterdir() if p.name.startswith(".vendor")] == []
    # a normal install replaces the link with a real copy; uninstall removes only the link
    assert run_main([], home_30, source, vendor) == 0
    assert target.is_dir() and not target.is_symlink()
    assert run_main(["--dev"], home_30, source, vendor) == 0
    assert run_main(["--uninstall"], home_30, source, vendor) == 0
    assert not target.exists() and not target.is_symlink()
    assert (source / "flux-outpaint.py").is_file()


# -- --list ------------------------------------------------------------------------------


def test_list_reports_programs_profiles_and_installed_versions(tmp_path, source, vendor, capsys):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (
        ("gimp-3.2", "exit 0"),
        (
            "flatpak",
            'test "$1 $2" = "info org.gimp.GIMP" && printf "GIMP\\n     Version: 3.2.4\\n"',
        ),
    ):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        os.chmod(bin_dir / name, 0o755)
    root = tmp_path / ".config" / "GIMP"
    for v in ("2.10", "3.0", "3.2"):
        (root / v).mkdir(parents=True)
    assert run_main(["--gimp-dir", str(root / "3.0")], tmp_path, source, vendor) == 0
    (root / "3.0" / "plug-ins" / "flux-outpaint" / "VERSION").write_text("2.0.0\n")
    capsys.readouterr()
    assert run_main(["--list"], tmp_path, source, vendor, env={"PATH": str(bin_dir)}) == 0
    out = capsys.readouterr().out
    assert "gimp-3.2 (" in out and "Flatpak org.gimp.GIMP 3.2.4" in out
    lines = out.splitlines()
    assert any("GIMP 3.0" in ln and "flux-outpaint 2.0.0 installed" in ln for ln in lines)
    assert any("GIMP 3.2" in ln and "not installed" in ln for ln in lines)
    assert any("2.10" in ln and "not supported" in ln for ln in lines)
    assert inst.plugin_version(source) == "1.2.3"


def test_list_with_nothing_found_still_succeeds(tmp_path, source, vendor, capsys):
    assert run_main(["--list"], tmp_path, source, vendor, env={"PATH": str(tmp_path)}) == 0
    out = capsys.readouterr().out
    assert "none found on PATH" in out and "no GIMP profile found" in out


# -- usage errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--zip", "x.zip", "--uninstall"],
        ["--dev", "--list"],
        ["--wheelhouse", "/nonexistent"],
        ["--set-key", "fal-secret-in-argv"],
    ],
)
def test_usage_errors_exit_2_without_echoing_arguments(args, tmp_path, source, capsys):
    with pytest.raises(SystemExit) as exc:
        run_main(args, tmp_path, source, None)
    assert exc.value.code == 2
    assert "fal-secret-in-argv" not in capsys.readouterr().err


def test_an_unknown_option_is_named_as_one(tmp_path, source, capsys):
    with pytest.raises(SystemExit) as exc:
        run_main(["--bogus-option"], tmp_path, source, None)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unknown option" in err and "--set-key" not in err.splitlines()[-1]


def test_verbose_as_the_readme_documents(tmp_path, source, vendor, capsys):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "`--verbose`" in readme
    assert run_main(["--verbose", "--dry-run"], tmp_path, source, vendor) in (0, 1)
    assert "unknown option" not in capsys.readouterr().err


# -- release zip -------------------------------------------------------------------------


def test_zip_unpacks_into_plug_ins_with_the_exec_bit(tmp_path, source, vendor, capsys):
    out = tmp_path / "dist" / "flux-outpaint.zip"
    assert run_main(["--zip", str(out)], tmp_path, source, vendor) == 0
    assert str(out) in capsys.readouterr().out
    with zipfile.ZipFile(out) as archive:
        infos = {i.filename: i for i in archive.infolist()}
        entry = infos["flux-outpaint/flux-outpaint.py"]
        assert archive.read(entry).startswith(b"#!/usr/bin/env python3\nimport sys\n")
        assert b"\r" not in archive.read(entry)
    assert all(name.startswith("flux-outpaint/") for name in infos)
    assert entry.create_system == 3 and stat.S_IMODE(entry.external_attr >> 16) == 0o755
    core = infos["flux-outpaint/flux_outpaint/core.py"]
    assert stat.S_IMODE(core.external_attr >> 16) == 0o644
    assert "flux-outpaint/vendor/marker_pkg/__init__.py" in infos
    assert "flux-outpaint/gimp_glue/__init__.py" in infos
    assert not any(n.endswith(".pyc") or "__pycache__" in n or "stale_pkg" in n for n in infos)
    if shutil.which("unzip"):  # what a user does: unzip inside plug-ins/
        plugins = tmp_path / "plug-ins"
        plugins.mkdir()
        subprocess.run(["unzip", "-q", str(out), "-d", str(plugins)], check=True)
        unpacked = plugins / "flux-outpaint" / "flux-outpaint.py"
        assert stat.S_IMODE(unpacked.stat().st_mode) == 0o755


# -- --set-key ---------------------------------------------------------------------------

FAKE_SETTINGS = """
import os
from pathlib import Path

def save_api_key(key):
    path = Path(os.environ["FLUX_OUTPAINT_CONFIG_DIR"]) / "flux-outpaint" / "fal-key"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key + "\\n")  # deliberately not private: install.py must fix the mode
    return path
"""


def test_set_key_reads_stdin_stores_0600_and_never_prints_the_key(tmp_path, source):
    (source / "flux_outpaint" / "settings.py").write_text(FAKE_SETTINGS)
    env = {**os.environ, "FLUX_OUTPAINT_CONFIG_DIR": str(tmp_path / "cfg")}
    key = "1234abcd-key:5678efgh-secret"
    done = subprocess.run(
        [sys.executable, str(ROOT / "install.py"), "--set-key", "--source", str(source)],
        input=key + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    path = tmp_path / "cfg" / "flux-outpaint" / "fal-key"
    assert path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key not in done.stdout + done.stderr and "Saved the fal API key" in done.stdout


def test_set_key_prompts_hidden_on_a_terminal(tmp_path, monkeypatch, capsys):
    saved = []
    fake = types.ModuleType("flux_outpaint.settings")
    fake.save_api_key = saved.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "flux_outpaint.settings", fake)
    monkeypatch.setattr(sys, "path", list(sys.path))
    prompts = []
    monkeypatch.setattr(inst.getpass, "getpass", lambda p: prompts.append(p) or " typed-key ")
    tty = io.StringIO()
    tty.isatty = lambda: True  # type: ignore[method-assign]
    assert run_main(["--set-key"], tmp_path, tmp_path, None, stdin=tty) == 0
    assert saved == ["typed-key"] and prompts
    assert "typed-key" not in capsys.readouterr().out


@pytest.mark.parametrize("given", ["", "   \n", "two words\n"])
def test_set_key_refuses_empty_or_broken_input(given, tmp_path, capsys):
    assert run_main(["--set-key"], tmp_path, tmp_path, None, stdin=io.StringIO(given)) == 1
    assert "no key stored" in capsys.readouterr().err


def test_set_key_with_the_real_settings_module(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "FAL_KEY"}
    env.update(
        HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "xdg"),
        FLUX_OUTPAINT_CONFIG_DIR=str(tmp_path / "cfg"),
    )
    key = "realkey-0001:abcdefabcdef"
    done = subprocess.run(
        [sys.executable, str(ROOT / "install.py"), "--set-key"],
        input=key,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    files = [p for p in tmp_path.rglob("fal-key") if p.is_file()]
    assert len(files) == 1 and files[0].read_text().strip() == key
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert key not in done.stdout + done.stderr


# -- the real plug-in folder ---------------------------------------------------------------


def test_real_plugin_folder_installs(tmp_path, vendor, capsys):
    (tmp_path / ".config" / "GIMP" / "3.2").mkdir(parents=True)
    rc = inst.main([], platform="linux", env={}, home=tmp_path, vendor=vendor)
    assert rc == 0, capsys.readouterr().err
    target = tmp_path / ".config" / "GIMP" / "3.2" / "plug-ins" / "flux-outpaint"
    entry = target / "flux-outpaint.py"
    assert entry.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert stat.S_IMODE(entry.stat().st_mode) == 0o755
    assert (target / "flux_outpaint" / "__init__.py").is_file()
    assert (target / "vendor" / "marker_pkg" / "__init__.py").is_file()
    assert inst.plugin_version(target) == inst.plugin_version(inst.REPO_SOURCE)


def test_runs_on_the_oldest_supported_python(tmp_path, source, vendor):
    """install.py promises Python 3.9+: install, zip, list and uninstall on a real 3.9."""
    py39 = pythons.find("3.9")
    if py39 is None:
        pytest.skip("no Python 3.9 on this machine")
    (tmp_path / ".config" / "GIMP" / "3.2").mkdir(parents=True)
    script = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); import install\n"
        "home, src, vend = map(Path, sys.argv[2:5])\n"
        "for args in ([], ['--zip', str(home / 'r.zip')], ['--list'], ['--uninstall'], []):\n"
        "    rc = install.main([*args, '--source', str(src)], platform='linux', env={},\n"
        "                      home=home, vendor=vend)\n"
        "    assert rc == 0, args\n"
    )
    done = subprocess.run(
        [str(py39), "-I", "-c", script, str(ROOT), str(tmp_path), str(source), str(vendor)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Removed" in done.stdout and "Done: restart GIMP" in done.stdout
    entry = tmp_path / ".config/GIMP/3.2/plug-ins/flux-outpaint/flux-outpaint.py"
    assert stat.S_IMODE(entry.stat().st_mode) == 0o755
    assert zipfile.is_zipfile(tmp_path / "r.zip")
