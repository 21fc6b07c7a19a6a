"""The GIMP sandboxes themselves: the right GIMP and Python, none of the modules the plug-in
must live without, PNG export through the PDB, the vendored httpx talking to a host server
from the chroot, and a plug-in installed by install.py's code being registered and run.
What runs in the chroot is in inside/: sandbox_probes.py (batches), modules_probe.py and
httpx_probe.py (the chroot's python3), probe_plugin/ (the plug-in)."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from .sandbox import INSIDE, GimpSession, gimp_sandbox

SERIES = {"trixie": ("3.0", "3.13"), "forky": ("3.2", "3.14")}
PROBE_PROC = "flux-outpaint-sandbox-probe"  # what inside/probe_plugin registers


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "agent": self.headers.get("user-agent")}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def host_server() -> Iterator[str]:
    """An HTTP server on the host's loopback; the chroots share the host's network."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_gimp_and_python_versions(gimp: GimpSession) -> None:
    gimp_series, python_series = SERIES[gimp.name]
    result = gimp.run_batch("sandbox_probes:versions")
    facts = result.check()
    assert facts["gimp"].startswith(gimp_series + "."), facts
    assert facts["gimp"] == gimp.gimp_version
    assert facts["python"].startswith(python_series + "."), facts
    assert facts["profile"] == gimp.chroot_profile  # GIMP3_DIRECTORY took effect
    cli = gimp.run([gimp.sandbox.gimp_console, "--version"])
    assert f"version {gimp.gimp_version}" in cli.stdout


def test_gimp_python_lacks_numpy_pil_httpx(sandbox_name: str) -> None:
    done = gimp_sandbox.run(
        sandbox_name, ["python3", "-"], input=(INSIDE / "modules_probe.py").read_text(), timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "numpy": False,
        "PIL": False,
        "httpx": False,
        "gi": True,
        "Gimp typelib": True,
    }


def test_batch_exports_png_through_pdb(gimp: GimpSession) -> None:
    result = gimp.run_batch("sandbox_probes:export_png")
    assert result.check() == {"status": "success"}
    with Image.open(gimp.host_dir / "out.png") as png:
        assert png.format == "PNG"
        assert png.size == (300, 200)
        assert png.convert("RGB").getcolors() == [(300 * 200, (0x33, 0x66, 0x99))]


def test_vendored_httpx_runs_on_chroot_python(
    gimp: GimpSession, vendor_dir: Path, host_server: str
) -> None:
    vendor = gimp.copy_in(vendor_dir, "vendor")
    done = gimp.run(
        ["python3", "-I", "-", vendor, host_server],
        input=(INSIDE / "httpx_probe.py").read_text(),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)
    assert facts["python"] == SERIES[gimp.name][1]
    assert facts["file"] == f"{vendor}/httpx/__init__.py"
    assert facts["version"] == "0.28.1"
    assert facts["sync"] == {"path": "/sync", "agent": "python-httpx/0.28.1"}
    assert facts["async"] == {"path": "/async", "agent": "python-httpx/0.28.1"}


def test_installed_plugin_registers_and_uses_vendor(
    gimp: GimpSession, tmp_path: Path, host_server: str
) -> None:
    source = tmp_path / "flux-outpaint"
    source.mkdir()
    shutil.copy2(INSIDE / "probe_plugin" / "flux-outpaint.py", source / "flux-outpaint.py")
    installed = gimp.install_plugin(source)
    assert installed == gimp.host_profile / "plug-ins" / "flux-outpaint"
    assert (installed / "vendor" / "httpx" / "__init__.py").is_file()
    result = gimp.run_batch(
        "sandbox_probes:call_probe", {"procedure": PROBE_PROC, "url": host_server + "/from-gimp"}
    )
    report = result.check()
    assert report["status"] == "success", result.describe()
    facts = json.loads(report["facts"])
    plugin_dir = f"{gimp.chroot_profile}/plug-ins/flux-outpaint"
    assert facts == {
        "httpx": f"{plugin_dir}/vendor/httpx/__init__.py",
        "echo": {"path": "/from-gimp", "agent": "python-httpx/0.28.1"},
        "python": SERIES[gimp.name][1],
    }


def test_batch_error_comes_back_with_its_traceback(gimp: GimpSession) -> None:
    result = gimp.run_batch("sandbox_probes:fail")
    assert not result.ok
    assert result.returncode != 0
    assert result.report == {"before": 1}
    assert result.error is not None
    assert "ValueError: sandbox probe failure" in result.error
    with pytest.raises(AssertionError, match="sandbox probe failure"):
        result.check()
    # what GIMP printed stays beside the job, for post-mortems of kept sessions
    kept = gimp.host_dir / "batch-1.stderr.txt"
    assert kept.read_text(encoding="utf-8") == result.stderr
    assert (gimp.host_dir / "batch-1.stdout.txt").read_text(encoding="utf-8") == result.stdout
