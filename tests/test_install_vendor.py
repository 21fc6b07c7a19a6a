"""install_vendor.py: the pinned packages from a real wheelhouse (downloaded once per
session), with and without pip, checked like GIMP would run them: httpx sync and async
requests on the host's python3 and on Python 3.10, from vendor/ alone (``-I``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import pythons
from script_modules import load_install

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # install_vendor.py lives at the repo root, next to install.py
    sys.path.insert(0, str(ROOT))

import install_vendor as iv  # noqa: E402


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory) -> Path:
    wh = tmp_path_factory.mktemp("wheelhouse")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--disable-pip-version-check",
            "-q",
            "--dest",
            str(wh),
            "--only-binary=:all:",
            "--platform",
            "any",
            "--implementation",
            "py",
            "--abi",
            "none",
            "--python-version",
            "3.10",
            "--no-deps",
            *iv.VENDOR_PINS,
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot download the pinned wheels: {done.stderr.strip()[-300:]}")
    return wh


@pytest.fixture(scope="session")
def real_vendor(wheelhouse, tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("real") / "vendor"
    iv.build_vendor(dest, wheelhouse, sys.executable)
    return dest


def dist_names(vendor: Path) -> set[str]:
    return {iv.canonical(p.name.split("-")[0]) for p in vendor.glob("*.dist-info")}


@pytest.mark.slow
def test_vendor_holds_exactly_the_pins_and_no_host_artifacts(real_vendor):
    assert dist_names(real_vendor) == {iv.canonical(p.split("==")[0]) for p in iv.VENDOR_PINS}
    assert (real_vendor / "exceptiongroup" / "__init__.py").is_file()
    assert not (real_vendor / "bin").exists()
    assert not list(real_vendor.rglob("*.pyc")) and not list(real_vendor.rglob("__pycache__"))


def test_every_vendored_requires_python_admits_310(real_vendor):
    specifiers = pytest.importorskip("packaging.specifiers")
    for meta in real_vendor.glob("*.dist-info/METADATA"):
        lines = meta.read_text().split("\n\n")[0].splitlines()
        spec = next(
            (ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Requires-Python:")), ""
        )
        assert specifiers.SpecifierSet(spec).contains("3.10.0"), (meta, spec)


# Run by GIMP's Python with only vendor/ on the path.  MockTransport proves the API; the
# loopback server makes httpcore/anyio/h11 really run, which is where a missing
# exceptiongroup shows up on 3.10.
HTTPX_SMOKE = """
import sys; sys.path.insert(0, sys.argv[1])
import asyncio, http.server, threading, httpx
assert httpx.__file__.startswith(sys.argv[1]), httpx.__file__

class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args): pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_port}"
def reply(request): return httpx.Response(200, json={"path": request.url.path})

with httpx.Client(transport=httpx.MockTransport(reply)) as c:
    assert c.get("https://fal.test/sync").json() == {"path": "/sync"}
with httpx.Client(trust_env=False) as c:
    assert c.get(url + "/sync-net").text == "/sync-net"

async def main():
    async with httpx.AsyncClient(transport=httpx.MockTransport(reply)) as c:
        assert (await c.get("https://fal.test/async")).json() == {"path": "/async"}
    async with httpx.AsyncClient(trust_env=False) as c:
        assert (await c.get(url + "/async-net")).text == "/async-net"
asyncio.run(main())
print("ok", sys.version_info[:2])
"""


@pytest.mark.parametrize(
    "python",
    [
        pytest.param("host", id="host-python3"),
        pytest.param("3.10", id="python3.10"),
        pytest.param("3.13", id="python3.13"),
    ],
)
def test_vendored_httpx_runs_sync_and_async_on_gimp_pythons(python, real_vendor):
    found = shutil.which("python3") if python == "host" else pythons.find(python)
    if not found:
        pytest.skip(f"no Python {python} on this machine")
    exe = str(found)
    done = subprocess.run(
        [exe, "-I", "-c", HTTPX_SMOKE, str(real_vendor)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok")


@pytest.mark.slow
def test_vendor_builds_once_per_run_for_every_profile(tmp_path, wheelhouse, monkeypatch, capsys):
    source = tmp_path / "src"
    source.mkdir()
    (source / "flux-outpaint.py").write_text("print(1)\n")
    for v in ("3.0", "3.2"):
        (tmp_path / ".config" / "GIMP" / v).mkdir(parents=True)
    calls = []
    real_build = iv.build_vendor
    monkeypatch.setattr(
        iv, "build_vendor", lambda *a, **kw: calls.append(a) or real_build(*a, **kw)
    )
    rc = load_install().main(
        ["--wheelhouse", str(wheelhouse), "--source", str(source)],
        platform="linux",
        env={},
        home=tmp_path,
    )
    assert rc == 0, capsys.readouterr().err
    assert len(calls) == 1
    for v in ("3.0", "3.2"):
        vendored = tmp_path / ".config" / "GIMP" / v / "plug-ins" / "flux-outpaint" / "vendor"
        assert (vendored / "httpx" / "__init__.py").is_file()
        assert not (vendored / "bin").exists()


@pytest.mark.slow
def test_user_pip_settings_that_clash_with_target_are_overridden(wheelhouse, tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_REQUIRE_VIRTUALENV", "1")
    monkeypatch.setenv("PIP_USER", "1")
    iv.build_vendor(tmp_path / "vendor", wheelhouse, sys.executable)
    assert (tmp_path / "vendor" / "httpx" / "__init__.py").is_file()


def test_without_pip_a_wheelhouse_is_unpacked_to_the_same_files(wheelhouse, real_vendor, tmp_path):
    dest = tmp_path / "vendor"
    iv.build_vendor(dest, wheelhouse, "/nonexistent/python3")

    def sources(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*.py")}

    assert sources(dest) == sources(real_vendor)
    assert dist_names(dest) == dist_names(real_vendor)


def test_without_pip_or_wheelhouse_the_message_says_what_to_do(tmp_path):
    with pytest.raises(iv.InstallError) as exc:
        iv.build_vendor(tmp_path / "v", None, "/nonexistent/python3")
    text = str(exc.value)
    assert "sudo apt install python3-pip" in text and "--wheelhouse" in text
    assert "release zip" in text and "\n" not in text


def write_dist(
    vendor: Path, name: str, requires_python: str = ">=3.8", requires: tuple[str, ...] = ()
) -> None:
    info = vendor / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    lines = [f"Name: {name}", "Version: 1.0", f"Requires-Python: {requires_python}"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n\nlong description: extra\n")


def test_check_vendor_refuses_a_package_that_excludes_310(tmp_path):
    for pin in iv.VENDOR_PINS:
        write_dist(tmp_path, pin.split("==")[0])
    iv.check_vendor(tmp_path)
    shutil.rmtree(tmp_path / "anyio-1.0.dist-info")
    write_dist(tmp_path, "anyio", ">=3.11")
    with pytest.raises(iv.InstallError, match="excludes 3.10"):
        iv.check_vendor(tmp_path)


def test_check_vendor_refuses_missing_exceptiongroup_and_missing_dependencies(tmp_path):
    for pin in iv.VENDOR_PINS:
        if not pin.startswith("exceptiongroup"):
            write_dist(tmp_path, pin.split("==")[0])
    with pytest.raises(iv.InstallError, match="missing: exceptiongroup"):
        iv.check_vendor(tmp_path)
    conditional = "typing-extensions>=4.6; python_version<'3.13'"
    write_dist(tmp_path, "exceptiongroup", requires=(conditional, "pytest>=6; extra == 'test'"))
    write_dist(tmp_path, "extra-dep", requires=("needed-thing (>=1)",))
    with pytest.raises(iv.InstallError, match="missing: needed-thing$"):
        iv.check_vendor(tmp_path)


@pytest.mark.parametrize(
    "spec",
    [
        ">=3.10",
        ">=3.8",
        "<3.11",
        ">=3.7,!=3.10.*",
        "~=3.9",
        "==3.10.*",
        ">=3.10.2",
        ">3.10",
        "<=3.12,>=3.9",
        "!=3.11",
    ],
)
def test_admits_agrees_with_packaging(spec):
    specifiers = pytest.importorskip("packaging.specifiers")
    for target in iv.TARGET_PYTHONS:
        version = ".".join(map(str, target)) + ".0"
        assert iv.admits(spec, target) == specifiers.SpecifierSet(spec).contains(version), (
            spec,
            target,
        )
