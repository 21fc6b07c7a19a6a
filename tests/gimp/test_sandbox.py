"""The GIMP sandboxes themselves: the right GIMP and Python, none of the modules the plug-in
must live without, PNG export through the PDB, the vendored httpx talking to a host server
from the chroot, and a plug-in installed by install.py's code being registered and run."""

from __future__ import annotations

import json
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from .sandbox import GimpSession, gimp_sandbox

SERIES = {"trixie": ("3.0", "3.13"), "forky": ("3.2", "3.14")}
PROBE_PROC = "flux-outpaint-sandbox-probe"


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
    result = gimp.run_batch(
        "import sys\n"
        "report(gimp=Gimp.version(), python=sys.version.split()[0],\n"
        "       profile=Gimp.directory())\n"
    )
    facts = result.check()
    assert facts["gimp"].startswith(gimp_series + "."), facts
    assert facts["gimp"] == gimp.gimp_version
    assert facts["python"].startswith(python_series + "."), facts
    assert facts["profile"] == gimp.chroot_profile  # GIMP3_DIRECTORY took effect
    cli = gimp.run([gimp.sandbox.gimp_console, "--version"])
    assert f"version {gimp.gimp_version}" in cli.stdout


def test_gimp_python_lacks_numpy_pil_httpx(sandbox_name: str) -> None:
    code = textwrap.dedent("""
        import importlib, json
        found = {}
        for name in ("numpy", "PIL", "httpx", "gi"):
            try:
                importlib.import_module(name)
                found[name] = True
            except ImportError:
                found[name] = False
        import gi
        gi.require_version("Gimp", "3.0")
        from gi.repository import Gimp
        found["Gimp typelib"] = Gimp.MAJOR_VERSION == 3
        print(json.dumps(found))
    """)
    done = gimp_sandbox.run(sandbox_name, ["python3", "-c", code], timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "numpy": False,
        "PIL": False,
        "httpx": False,
        "gi": True,
        "Gimp typelib": True,
    }


def test_batch_exports_png_through_pdb(gimp: GimpSession) -> None:
    result = gimp.run_batch(
        textwrap.dedent("""
        img = Gimp.Image.new(300, 200, Gimp.ImageBaseType.RGB)
        layer = Gimp.Layer.new(img, "fill", 300, 200, Gimp.ImageType.RGB_IMAGE, 100.0,
                               Gimp.LayerMode.NORMAL)
        img.insert_layer(layer, None, 0)
        Gimp.context_push()
        Gimp.context_set_foreground(Gegl.Color.new("#336699"))
        layer.fill(Gimp.FillType.FOREGROUND)
        Gimp.context_pop()
        proc = Gimp.get_pdb().lookup_procedure("file-png-export")
        cfg = proc.create_config()
        cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
        cfg.set_property("image", img)
        cfg.set_property("file", Gio.File.new_for_path(SESSION_DIR + "/out.png"))
        status = proc.run(cfg).index(0)
        img.delete()
        report(status=status.value_nick)
    """)
    )
    assert result.check() == {"status": "success"}
    with Image.open(gimp.host_dir / "out.png") as png:
        assert png.format == "PNG"
        assert png.size == (300, 200)
        assert png.convert("RGB").getcolors() == [(300 * 200, (0x33, 0x66, 0x99))]


def test_vendored_httpx_runs_on_chroot_python(
    gimp: GimpSession, vendor_dir: Path, host_server: str
) -> None:
    vendor = gimp.copy_in(vendor_dir, "vendor")
    code = textwrap.dedent("""
        import asyncio, json, sys
        sys.path.insert(0, sys.argv[1])
        import httpx
        with httpx.Client(timeout=10) as client:
            sync = client.get(sys.argv[2] + "/sync").json()
        async def fetch():
            async with httpx.AsyncClient(timeout=10) as client:
                return (await client.get(sys.argv[2] + "/async")).json()
        print(json.dumps({"file": httpx.__file__, "version": httpx.__version__,
                          "python": "%d.%d" % sys.version_info[:2],
                          "sync": sync, "async": asyncio.run(fetch())}))
    """)
    done = gimp.run(["python3", "-I", "-c", code, vendor, host_server], timeout=60)
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)
    assert facts["python"] == SERIES[gimp.name][1]
    assert facts["file"] == f"{vendor}/httpx/__init__.py"
    assert facts["version"] == "0.28.1"
    assert facts["sync"] == {"path": "/sync", "agent": "python-httpx/0.28.1"}
    assert facts["async"] == {"path": "/async", "agent": "python-httpx/0.28.1"}


PROBE_PLUGIN = textwrap.dedent(f"""\
    #!/usr/bin/env python3
    import json, os, sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor"))
    import gi
    gi.require_version("Gimp", "3.0")
    from gi.repository import Gimp, GObject

    class Probe(Gimp.PlugIn):
        def do_set_i18n(self, name):
            return False

        def do_query_procedures(self):
            return ["{PROBE_PROC}"]

        def do_create_procedure(self, name):
            proc = Gimp.Procedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run, None)
            proc.set_documentation("Sandbox probe", None, name)
            proc.set_attribution("flux-outpaint", "flux-outpaint", "2026")
            proc.add_string_argument("url", "URL", None, "", GObject.ParamFlags.READWRITE)
            proc.add_string_return_value("facts", "Facts", None, "",
                                         GObject.ParamFlags.READWRITE)
            return proc

        def run(self, procedure, config, data):
            import httpx
            with httpx.Client(timeout=10) as client:
                echo = client.get(config.get_property("url")).json()
            facts = json.dumps({{"httpx": httpx.__file__, "echo": echo,
                                "python": "%d.%d" % sys.version_info[:2]}})
            values = procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, None)
            values.remove(1)
            values.insert(1, GObject.Value(GObject.TYPE_STRING, facts))
            return values

    Gimp.main(Probe.__gtype__, sys.argv)
""")


def test_installed_plugin_registers_and_uses_vendor(
    gimp: GimpSession, tmp_path: Path, host_server: str
) -> None:
    source = tmp_path / "flux-outpaint"
    source.mkdir()
    (source / "flux-outpaint.py").write_text(PROBE_PLUGIN, encoding="utf-8")
    installed = gimp.install_plugin(source)
    assert installed == gimp.host_profile / "plug-ins" / "flux-outpaint"
    assert (installed / "vendor" / "httpx" / "__init__.py").is_file()
    result = gimp.run_batch(
        textwrap.dedent(f"""
        proc = Gimp.get_pdb().lookup_procedure({PROBE_PROC!r})
        cfg = proc.create_config()
        cfg.set_property("url", {host_server + "/from-gimp"!r})
        values = proc.run(cfg)
        report(status=values.index(0).value_nick, facts=values.index(1))
    """)
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
    result = gimp.run_batch("report(before=1)\nraise ValueError('sandbox probe failure')\n")
    assert not result.ok
    assert result.returncode != 0
    assert result.report == {"before": 1}
    assert result.error is not None
    assert "ValueError: sandbox probe failure" in result.error
    with pytest.raises(AssertionError, match="sandbox probe failure"):
        result.check()
