"""Security checks across modules: TLS verification, where the key may never appear."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import flux_outpaint_fal_local as fal_local
import pytest
import trustme
from flux_outpaint import geometry, payload, planning
from flux_outpaint.errors import AuthError, NetworkError, user_message
from flux_outpaint.journal import Journal
from flux_outpaint.pipeline import Job, run_job
from flux_outpaint.queue_client import FalQueueClient
from flux_outpaint_cli.imageio import encode
from PIL import Image

pytestmark = pytest.mark.server  # the local fal server on loopback

ROOT = Path(__file__).resolve().parent.parent
SECRET = "sec-0123456789abcdef-KEYMATERIAL"


def small_job() -> Job:
    plan = planning.make_plan(geometry.from_numbers(64, 64, geometry.Expansion(left=16)))
    rgba = Image.new("RGBA", (64, 64), (10, 200, 30, 255)).tobytes()
    return Job(rgba, plan, payload.RequestOptions())


@pytest.fixture
def tls_server(tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = (tmp_path / n for n in ("cert.pem", "key.pem", "ca.pem"))
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    with fal_local.start_server(tls_cert=str(cert_file), tls_key=str(key_file)) as server:
        yield server, ca_file


def test_self_signed_server_is_refused_without_its_ca(tls_server, tmp_path, monkeypatch):
    server, _ = tls_server
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    client = FalQueueClient(server.base_url, SECRET, time_scale=0.01)
    with pytest.raises(NetworkError) as caught:
        run_job(
            small_job(),
            client=client,
            journal=Journal(tmp_path / "j.jsonl"),
            encoder=encode,
            deadline_s=20,
        )
    assert "certificate" in str(caught.value).lower()
    assert server.submits == []


def test_server_is_trusted_once_its_ca_is_configured(tls_server, tmp_path, monkeypatch):
    server, ca_file = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    client = FalQueueClient(server.base_url, SECRET)
    result = run_job(
        small_job(),
        client=client,
        journal=Journal(tmp_path / "j.jsonl"),
        encoder=encode,
        deadline_s=20,
    )
    assert result.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(server.submits) == 1


def test_wrong_key_message_never_shows_the_key(tmp_path):
    with fal_local.start_server(keys=["the-right-key"]) as server:
        client = FalQueueClient(server.base_url, SECRET)
        assert SECRET not in repr(client)
        with pytest.raises(AuthError) as caught:
            run_job(
                small_job(),
                client=client,
                journal=Journal(tmp_path / "j.jsonl"),
                encoder=encode,
                deadline_s=20,
            )
    message = user_message(caught.value, (SECRET,))
    assert message and "\n" not in message and SECRET not in message
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)


@pytest.mark.slow
def test_cli_run_leaves_the_key_nowhere(tmp_path):
    source = tmp_path / "in.png"
    Image.new("RGB", (80, 60), (120, 40, 200)).save(source)
    data, log = tmp_path / "data", tmp_path / "server.jsonl"
    env = {
        **os.environ,
        "FAL_KEY": SECRET,
        "FLUX_OUTPAINT_DATA_DIR": str(data),
        "FLUX_OUTPAINT_CONFIG_DIR": str(tmp_path / "config"),
    }
    with fal_local.start_server(keys=[SECRET], queue_seconds=1.5, log_path=str(log)) as server:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "scripts" / "outpaint.py"),
                str(source),
                "--top",
                "20",
                "--base-url",
                server.base_url,
                "-o",
                str(tmp_path / "out.png"),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # while it waits in the queue, its command line is readable by every local user
        deadline = time.monotonic() + 10
        while not server.submits and time.monotonic() < deadline:
            time.sleep(0.05)
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert SECRET.encode() not in cmdline
    assert SECRET not in out + err
    written = [p for p in data.rglob("*") if p.is_file()]
    assert written, "the journal and the result cache should exist"
    for path in [*written, log]:
        assert SECRET.encode() not in path.read_bytes(), path
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_set_key_writes_a_private_file_from_stdin(tmp_path):
    env = {**os.environ, "FLUX_OUTPAINT_CONFIG_DIR": str(tmp_path / "config")}
    env.pop("FAL_KEY", None)
    done = subprocess.run(
        [sys.executable, str(ROOT / "install.py"), "--set-key"],
        input=SECRET + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr
    files = [p for p in (tmp_path / "config").rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].read_text().strip() == SECRET
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
