"""Every call ends at its budget or on cancel, whatever a hostile server does with its bytes.

The servers here (tests/hostile.py) trickle, stall or never finish their headers; without
the socket-level budget each of these calls would run for minutes.  No assertion is timed:
a call that raised the right error has ended, which is what is checked.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest
from flux_outpaint import errors, netbudget, retry
from flux_outpaint.queue_client import FalQueueClient
from flux_outpaint.status import RequestHandle
from hostile import TrickleProxy, after, answer, serve, stall, trickle, trickle_headers

pytestmark = pytest.mark.server  # sockets on loopback

KEY = "budget-test-key-12345"
RID = "7d1c0a22-3333-4c55-9c39-8f0d2a3b9e11"
STATUS = json.dumps({"status": "IN_PROGRESS", "logs": []}).encode()


def handle(base: str) -> RequestHandle:
    root = f"{base}/fal-ai/flux-2-pro/requests/{RID}"
    return RequestHandle(RID, f"{root}/status", root, f"{root}/cancel")


def client(base: str, **kw) -> FalQueueClient:
    return FalQueueClient(base, KEY, time_scale=0.01, **kw)


def test_the_budget_is_installed_under_the_pinned_httpx():
    c = FalQueueClient("https://queue.fal.run", KEY)
    assert c.budgeted
    pool = c._http._transport._pool
    assert type(pool._network_backend).__name__ == "_Backend"
    assert FalQueueClient("https://queue.fal.run", KEY, transport=httpx.MockTransport(None))


def test_a_trickled_status_answer_ends_at_the_deadline():
    with serve(lambda h, stop: trickle(h, stop, STATUS, every_s=0.5)) as server:
        c = client(server.base_url)
        with pytest.raises(errors.OutpaintTimeoutError, match="time limit"):
            c.status(handle(server.base_url), deadline=time.monotonic() + 1.0)


def test_headers_that_never_end_cannot_hold_a_call():
    with serve(trickle_headers) as server:
        c = client(server.base_url)
        with pytest.raises(errors.OutpaintTimeoutError):
            c.result(handle(server.base_url), deadline=time.monotonic() + 1.0)


def test_without_a_deadline_one_attempt_still_has_a_total_budget():
    # The submit's answer trickles: the attempt ends at its total budget, and a submit whose
    # answer was lost is never sent again.
    reply = json.dumps({"request_id": RID}).encode()
    with serve(lambda h, stop: trickle(h, stop, reply, every_s=0.5)) as server:
        c = client(server.base_url, timeouts=retry.Timeouts(total=1.0))
        with pytest.raises(errors.SubmitUnknownError, match="not sent again"):
            c.submit({"image_url": "data:,"})
        assert server.count("POST") == 1


def test_a_trickled_image_ends_at_the_deadline():
    png = b"\x89PNG\r\n\x1a\n" + bytes(200)

    def script(h, stop):
        trickle(h, stop, png, ctype="image/png", every_s=0.3)

    with serve(script) as server:
        c = client(server.base_url)
        result = {"images": [{"url": f"{server.base_url}/files/out.png"}]}
        with pytest.raises(errors.OutpaintTimeoutError):
            c.download(result, deadline=time.monotonic() + 1.0)


def test_a_cancel_interrupts_a_read_that_is_blocked():
    with serve(stall) as server:
        c = client(server.base_url)
        cancel = threading.Event()
        after(0.3, cancel.set)
        with pytest.raises(errors.CancelledError):
            c.result(handle(server.base_url), cancel=cancel)


def test_a_cancelled_wait_on_a_silent_server_cancels_on_fal_and_names_the_request():
    def script(h, stop):
        if h.command == "PUT":
            return answer(h, b'{"status": "CANCELLATION_REQUESTED"}', 202)
        stall(h, stop)  # the stream and every poll: headers never come

    with serve(script) as server:
        c = client(server.base_url)
        cancel = threading.Event()
        after(0.3, cancel.set)
        with pytest.raises(errors.CancelledError) as info:
            c.wait(handle(server.base_url), cancel=cancel)
        assert info.value.request_id == RID and "asked to stop" in str(info.value)
        assert server.count("PUT", "/cancel") == 1


def test_a_submit_on_the_wire_keeps_its_id_when_cancelled_within_the_grace():
    reply = json.dumps({"request_id": RID}).encode()

    def script(h, stop):
        stop.wait(0.6)  # the answer comes after the cancel, within the grace
        answer(h, reply)

    with serve(script) as server:
        c = client(server.base_url)
        cancel = threading.Event()
        after(0.1, cancel.set)
        assert c.submit({}, cancel=cancel).request_id == RID


def test_a_submit_that_never_answers_is_abandoned_after_the_grace(monkeypatch):
    monkeypatch.setattr(retry, "SUBMIT_CANCEL_GRACE_S", 0.3)
    with serve(stall) as server:
        c = client(server.base_url)
        cancel = threading.Event()
        after(0.1, cancel.set)
        with pytest.raises(errors.SubmitUnknownError, match="may have accepted it"):
            c.submit({}, cancel=cancel)
        assert server.count("POST") == 1


def test_a_cancel_set_before_the_submit_sends_nothing():
    with serve(stall) as server:
        cancel = threading.Event()
        cancel.set()
        with pytest.raises(errors.CancelledError):
            client(server.base_url).submit({}, cancel=cancel)
        assert server.requests == []


def test_limit_is_per_thread_and_restored():
    seen = []
    with netbudget.limit(1.0):
        seen.append(netbudget._current().end)
        other = threading.Thread(target=lambda: seen.append(netbudget._current()))
        other.start()
        other.join()
        with netbudget.limit(2.0):
            seen.append(netbudget._current().end)
        seen.append(netbudget._current().end)
    seen.append(netbudget._current())
    assert seen == [1.0, None, 2.0, 1.0, None]


def test_a_trickled_tls_handshake_ends_at_the_deadline(tmp_path, monkeypatch):
    import flux_outpaint_fal_local
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    server = flux_outpaint_fal_local.start_server(
        tls_cert=str(tmp_path / "cert.pem"), tls_key=str(tmp_path / "key.pem")
    )
    proxy = TrickleProxy(int(server.base_url.rsplit(":", 1)[1]))
    try:
        base = f"https://127.0.0.1:{proxy.port}"
        c = client(base)
        with pytest.raises(errors.OutpaintTimeoutError):
            c.status(handle(base), deadline=time.monotonic() + 1.0)
        # The ssl module waits without looking at any flag: only the watchdog ends this
        # handshake before its (here one-minute) connect timeout.
        cancel = threading.Event()
        after(0.3, cancel.set)
        slow = client(base, timeouts=retry.Timeouts(connect=60.0))
        with pytest.raises(errors.CancelledError):
            slow.status(handle(base), cancel=cancel)
    finally:
        proxy.close()
        server.stop()


def test_a_handshake_watchdog_never_touches_a_descriptor_closed_under_it():
    """The caller may close its socket before stopping the watchdog (a failed handshake), and
    the number can then name another socket: expiring afterwards must shut neither down."""
    ours, peer = socket.socketpair()
    fired = threading.Event()
    dog = netbudget._Watchdog(ours, None, fired.is_set)
    ours.close()
    other, other_peer = socket.socketpair()  # may reuse the closed number
    try:
        fired.set()
        deadline = time.monotonic() + 5
        while dog.fired != "cancelled" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert dog.fired == "cancelled"
        other.sendall(b"still open")
        assert other_peer.recv(16) == b"still open"
    finally:
        dog.stop()
        for s in (peer, other, other_peer):
            s.close()
