"""install.py against real GIMP 3.0 and 3.2: install, run, uninstall; and the release zip.

The probe that runs inside GIMP is inside/install_probe.py."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from .harness import local_server, run, server_env
from .sandbox import GimpSession

ROOT = Path(__file__).resolve().parents[2]


def installer(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "install.py"), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def probe(gimp: GimpSession) -> dict:
    with local_server() as server:
        report = run(gimp, "install_probe", None, server_env(server))
        report["submits"] = len(server.submits)
    return report


def test_install_run_uninstall(gimp: GimpSession):
    done = installer("--gimp-dir", str(gimp.host_profile))
    assert done.returncode == 0, done.stderr
    assert "Restart GIMP" in done.stdout or "restart GIMP" in done.stdout
    entry = gimp.host_profile / "plug-ins" / "flux-outpaint" / "flux-outpaint.py"
    assert os.access(entry, os.X_OK)

    report = probe(gimp)
    assert report["registered"] and report["recover_registered"]
    assert report["ok"], report
    assert report["layers"][0] == "Outpaint" and report["submits"] == 1

    gone = installer("--uninstall", "--gimp-dir", str(gimp.host_profile))
    assert gone.returncode == 0, gone.stderr
    assert not entry.exists()
    assert probe(gimp)["registered"] is False


def test_release_zip_unpacked_by_hand(gimp: GimpSession, tmp_path: Path):
    archive = tmp_path / "flux-outpaint.zip"
    built = installer("--zip", str(archive))
    assert built.returncode == 0, built.stderr
    plug_ins = gimp.host_profile / "plug-ins"
    plug_ins.mkdir(exist_ok=True)
    with zipfile.ZipFile(archive) as zf:
        assert all(n.startswith("flux-outpaint/") for n in zf.namelist())
        assert any(n.startswith("flux-outpaint/vendor/httpx/") for n in zf.namelist())
        zf.extractall(plug_ins)
    entry = plug_ins / "flux-outpaint" / "flux-outpaint.py"
    entry.chmod(0o755)  # what the README tells zip users to do
    report = probe(gimp)
    assert report["registered"] and report["ok"], report
