"""The official fal-client 1.0.3, unchanged, against the local server over TLS.

fal-client builds queue URLs from ``FAL_QUEUE_RUN_HOST``, which it reads once, at import
(auth.py: ``FAL_QUEUE_RUN_HOST = os.environ.get(...)``), and always uses ``https://``
(client.py: ``QUEUE_URL_FORMAT = f"https://{FAL_QUEUE_RUN_HOST}/"``). So each check runs the
client in a fresh interpreter whose environment holds FAL_QUEUE_RUN_HOST=127.0.0.1:PORT,
SSL_CERT_FILE=<trustme CA> (honoured by httpx) and FAL_KEY. Storage has no such variable:
``REST_URL = "https://rest.fal.ai"`` and ``CDN_URL = "https://v3.fal.media"`` are hard-coded
module constants, so the upload checks (only those) set ``fal_client.client.REST_URL`` and
``CDN_URL`` to the server's origin before uploading; nothing else of the client is touched.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import textwrap
from urllib.parse import urlsplit

import flux_outpaint_fal_local as fal_local
import pytest
import trustme
from PIL import Image

pytestmark = pytest.mark.server  # the local fal server on loopback

KEY = "conformance-key-77c1"
APP_ID = "fal-ai/flux-2-pro/outpaint"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    ca = trustme.CA()
    folder = tmp_path_factory.mktemp("tls")
    server_pem, ca_pem = folder / "server.pem", folder / "ca.pem"
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(
        str(server_pem)
    )
    ca.cert_pem.write_to_path(str(ca_pem))
    return str(server_pem), str(ca_pem)


@pytest.fixture
def start(tls_files):
    servers = []

    def _start(**kw):
        srv = fal_local.start_server(tls_cert=tls_files[0], tls_key=tls_files[0], **kw)
        servers.append(srv)
        return srv

    yield _start
    for srv in servers:
        srv.stop()


def image_uri(w: int = 96, h: int = 64) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (30, 120, 200)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def run_client(srv, ca_pem: str, body: str, *, patch_storage: bool = False) -> dict:
    """Run `body` with fal_client imported; it must set `out` (a JSON-able dict)."""
    prelude = "import json, fal_client\n"
    if patch_storage:
        prelude += (
            f"import fal_client.client as fcc\nfcc.REST_URL = fcc.CDN_URL = {srv.base_url!r}\n"
        )
    code = prelude + textwrap.dedent(body) + "\nprint('OUT ' + json.dumps(out))\n"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FAL_", "SSL_CERT_"))
        and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env.update(
        FAL_QUEUE_RUN_HOST=urlsplit(srv.base_url).netloc,
        SSL_CERT_FILE=ca_pem,
        FAL_KEY=KEY,
        NO_PROXY="127.0.0.1,localhost",
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = [x for x in proc.stdout.splitlines() if x.startswith("OUT ")]
    return json.loads(lines[-1][4:])


def test_submit_status_iter_events_get(start, tls_files):
    srv = start(queue_seconds=0.4, run_seconds=0.4)
    out = run_client(
        srv,
        tls_files[1],
        f"""
        h = fal_client.submit({APP_ID!r}, {{"image_url": {image_uri()!r}, "expand_left": 32}})
        first = h.status(with_logs=True)
        kinds, logs, positions = [], None, []
        for ev in h.iter_events(with_logs=True, interval=0.02):
            kinds.append(type(ev).__name__)
            if isinstance(ev, fal_client.Queued):
                positions.append(ev.position)
            logs = getattr(ev, "logs", logs)
        done = fal_client.status({APP_ID!r}, h.request_id, with_logs=True)
        out = {{"id": h.request_id, "first": type(first).__name__, "kinds": kinds,
               "positions": positions, "logs": logs, "metrics": done.metrics,
               "error": done.error, "no_logs": h.status().logs,
               "result": h.get(), "by_id": fal_client.result({APP_ID!r}, h.request_id)}}
    """,
    )
    assert srv.submits == [out["id"]]
    assert out["first"] == "Queued" and out["kinds"][-1] == "Completed"
    assert "InProgress" in out["kinds"]
    assert out["positions"] == sorted(out["positions"], reverse=True)
    assert [e["message"] for e in out["logs"]][-1] == "Request completed"
    assert out["metrics"]["inference_time"] > 0 and out["error"] is None
    assert out["no_logs"] is None
    image = out["result"]["images"][0]
    assert (image["width"], image["height"]) == (128, 64)
    assert image["url"].startswith(srv.base_url + "/files/")
    assert out["by_id"] == out["result"]
    # the client followed the server's URLs for the handle, rebuilt them for the by-id calls
    paths = {e["path"] for e in srv.log}
    assert f"/fal-ai/flux-2-pro/requests/{out['id']}/status" in paths
    assert all(e["headers"]["user-agent"].startswith("fal-client/1.0.3") for e in srv.log)


def test_subscribe_with_queue_updates(start, tls_files):
    srv = start(queue_seconds=0.2, run_seconds=0.3)
    out = run_client(
        srv,
        tls_files[1],
        f"""
        seen, ids = [], []
        res = fal_client.subscribe({APP_ID!r}, {{"image_url": {image_uri()!r},
                                   "expand_top": 16, "output_format": "png"}},
                                   with_logs=True, interval=0.02, on_enqueue=ids.append,
                                   on_queue_update=lambda s: seen.append(type(s).__name__))
        out = {{"result": res, "seen": seen, "ids": ids}}
    """,
    )
    assert srv.submits == out["ids"]
    assert out["seen"][-1] == "Completed" and "InProgress" in out["seen"]
    image = out["result"]["images"][0]
    assert (image["content_type"], image["width"], image["height"]) == ("image/png", 96, 80)


def test_async_subscribe(start, tls_files):
    srv = start(run_seconds=0.2)
    out = run_client(
        srv,
        tls_files[1],
        f"""
        import asyncio
        res = asyncio.run(fal_client.subscribe_async(
            {APP_ID!r}, {{"image_url": {image_uri()!r}, "expand_right": 8}}, interval=0.02))
        out = {{"result": res}}
    """,
    )
    assert len(srv.submits) == 1 and out["result"]["images"][0]["width"] == 104


def test_cancel_queued_then_result_and_second_cancel_fail(start, tls_files):
    srv = start(queue_seconds=30)
    out = run_client(
        srv,
        tls_files[1],
        f"""
        h = fal_client.submit({APP_ID!r}, {{"image_url": {image_uri()!r}, "expand_left": 8}})
        h.cancel()
        try:
            h.get(interval=0.02)
            got = None
        except fal_client.FalClientHTTPError as exc:
            got = [exc.status_code, exc.error_type, str(exc)]
        try:
            fal_client.cancel({APP_ID!r}, h.request_id)
            again = None
        except fal_client.FalClientHTTPError as exc:
            again = exc.status_code
        out = {{"got": got, "again": again}}
    """,
    )
    assert out["got"] == [499, "client_cancelled", "Request cancelled by the client"]
    assert out["again"] == 400  # ALREADY_COMPLETED
    assert len(srv.submits) == 1


def test_subscribe_client_timeout_cancels_a_never_finishing_job(start, tls_files):
    srv = start(scenarios=["never-finish"])
    out = run_client(
        srv,
        tls_files[1],
        f"""
        try:
            fal_client.subscribe({APP_ID!r}, {{"image_url": {image_uri()!r},
                                 "expand_left": 8}}, interval=0.05, client_timeout=1.5)
            err = None
        except fal_client.FalClientTimeoutError as exc:
            err = exc.request_id
        out = {{"err": err}}
    """,
    )
    assert out["err"] == srv.submits[0]
    cancels = [e for e in srv.log if e["path"].endswith("/cancel")]
    assert [e["status"] for e in cancels] == [202]
    submit_event = next(e for e in srv.log if e["method"] == "POST")
    assert submit_event["headers"]["x-fal-request-timeout"] == "1.5"


def test_validation_error_surfaces_as_the_422_detail_list(start, tls_files):
    srv = start()
    out = run_client(
        srv,
        tls_files[1],
        f"""
        try:
            fal_client.subscribe({APP_ID!r}, {{"image_url": {image_uri()!r},
                                 "expand_left": 5000}}, interval=0.02)
            err = None
        except fal_client.FalClientHTTPError as exc:
            err = [exc.status_code, exc.message]
        out = {{"err": err}}
    """,
    )
    status, detail = out["err"]
    assert status == 422 and detail[0]["loc"] == ["body", "expand_left"]


def test_client_retries_429_ingress_503_and_dropped_result_without_resubmitting(start, tls_files):
    srv = start(scenarios=["429-once", "ingress-503", "drop-result"], run_seconds=0.1)
    out = run_client(
        srv,
        tls_files[1],
        f"""
        res = fal_client.subscribe({APP_ID!r}, {{"image_url": {image_uri()!r},
                                   "expand_left": 8}}, interval=0.02)
        out = {{"result": res}}
    """,
    )
    assert out["result"]["images"][0]["width"] == 104
    assert len(srv.submits) == 1
    statuses = [(e["method"], e["status"]) for e in srv.log]
    assert ("POST", 429) in statuses and ("GET", 503) in statuses
    assert ("GET", None) in statuses  # the dropped result, retried


def test_client_does_not_retry_a_plain_500_status(start, tls_files):
    srv = start(scenarios=["500-once"])
    out = run_client(
        srv,
        tls_files[1],
        f"""
        h = fal_client.submit({APP_ID!r}, {{"image_url": {image_uri()!r}, "expand_left": 8}})
        try:
            h.status()
            err = None
        except fal_client.FalClientHTTPError as exc:
            err = [exc.status_code, exc.error_type]
        out = {{"err": err, "then": h.get(interval=0.02)["images"][0]["width"]}}
    """,
    )
    assert out == {"err": [500, "internal_error"], "then": 104}


def test_upload_both_repositories_and_use_the_file(start, tls_files):
    srv = start()
    png = base64.b64decode(image_uri(70, 70).split(",", 1)[1])
    out = run_client(
        srv,
        tls_files[1],
        f"""
        import base64
        data = base64.b64decode({base64.b64encode(png).decode()!r})
        v3 = fal_client.upload(data, "image/png", file_name="ref.png")
        gcs = fal_client.upload(data, "image/png", repository="fal")
        res = fal_client.subscribe({APP_ID!r}, {{"image_url": gcs, "expand_bottom": 10}},
                                   interval=0.02)
        out = {{"v3": v3, "gcs": gcs, "result": res}}
    """,
        patch_storage=True,
    )
    assert out["v3"].startswith(srv.base_url + "/files/") and out["v3"].endswith("/ref.png")
    assert out["gcs"].startswith(srv.base_url + "/files/")
    image = out["result"]["images"][0]
    assert (image["width"], image["height"]) == (70, 80)
    paths = [e["path"] for e in srv.log]
    assert "/storage/auth/token" in paths and "/files/upload" in paths
    assert "/storage/upload/initiate" in paths
