"""The fault matrix through the plug-in: every local-server scenario in GIMP 3.0 and 3.2.

One GIMP start per version runs all of ``fault_matrix.EXPECTED``.  The plug-in reads the
server's URL from the environment GIMP was started with, so the URL stays fixed and the
server behind it changes: before each case the batch asks the host (a file in the session
folder) to restart the local server on the same port with that case's scenario.  A fresh
server per case also gives each case its own submit count and fresh "once" faults.
The batch is inside/fault_scenarios.py, the asking is inside/switching.py.

With ``FLUX_OUTPAINT_MATRIX_OUT=FILE`` each case appends its ``fault_matrix.Row`` as a JSON
line; ``python scripts/fault_matrix.py --gimp-rows FILE --write docs/fault-matrix.md`` then
writes the table with the CLI rows.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlsplit

import flux_outpaint_fal_local as fal_local
import pytest
from flux_outpaint_fal_local import matrix as fault_matrix

from .harness import KEY, files_containing, one_line, run, server_env
from .sandbox import GimpSession

MATRIX_OUT_ENV = "FLUX_OUTPAINT_MATRIX_OUT"
SWITCH_POLL_S = 0.02
SWITCH_TIMEOUT_S = 60

# What inside/switching.py gets: how long to wait for a switch, and how often to look.
SWITCH_PARAMS = {"timeout_s": SWITCH_TIMEOUT_S, "poll_s": SWITCH_POLL_S}


def operation(method: str, path: str) -> str:
    """What a logged request was: submit, status, status/stream, cancel, result, or storage."""
    parts = [p for p in path.split("/") if p]
    if "requests" in parts:
        return "/".join(parts[parts.index("requests") + 2 :]) or "result"
    if method == "POST" and parts[:1] not in (["files"], ["storage"]):
        return "submit"
    return "storage"


class SwitchedServer:
    """The local fal server behind one fixed URL, restarted between a batch's cases.

    ``submits[label]`` counts the submits each labelled server accepted (the label the batch
    passed to ``switch_server``; "" for the server running before the first switch), and
    ``exchanges[label]`` lists its requests as ``(operation, HTTP status)``.
    """

    def __init__(self, session: GimpSession, **options) -> None:
        self._folder = session.host_dir
        self._options = {"keys": [KEY], **options}
        self._server: fal_local.LocalServer | None = fal_local.start_server(**self._options)
        self.base_url = self._server.base_url
        self._port = urlsplit(self.base_url).port
        self._label = ""
        self.submits: dict[str, int] = {}
        self.exchanges: dict[str, list[tuple[str, int | None]]] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="switch-server", daemon=True)

    def __enter__(self) -> SwitchedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join(SWITCH_TIMEOUT_S)
        self._retire()

    def _retire(self) -> None:
        if self._server is not None:
            self.submits[self._label] = len(self._server.submits)
            self.exchanges[self._label] = [
                (operation(e["method"], e["path"]), e["status"]) for e in self._server.log
            ]
            self._server.stop()
            self._server = None

    def _switch(self, command: dict) -> None:
        self._retire()
        self._label = command["label"]
        if command["stop"]:  # nothing listens: nothing can be submitted
            self.submits[self._label], self.exchanges[self._label] = 0, []
        else:
            self._server = fal_local.start_server(
                port=self._port, scenarios=command["scenarios"], **self._options
            )

    def _watch(self) -> None:
        number = 1
        while not self._done.is_set():
            path = self._folder / f"switch-{number}"
            if not path.exists():
                time.sleep(SWITCH_POLL_S)
                continue
            error = ""
            try:
                self._switch(json.loads(path.read_text()))
            except Exception as exc:  # noqa: BLE001 - reported to the batch, which fails
                error = repr(exc)
            Path(f"{path}.done").write_text(error)
            number += 1


# The exchange that shows a scenario's fault really reached the plug-in.  Not listed:
# 500-once and ingress-503 answer a GET of /status, which the client makes only when the
# status stream fails, and ignore-cancel needs a cancel; a run that goes well makes neither,
# so those three rows pass without their fault firing (the CLI's rows alike).
EVIDENCE: dict[str, tuple[str, int | None]] = {
    "429-once": ("submit", 429),
    "drop-result": ("result", None),  # the connection closed with no answer
    "stall-status": ("status", 200),  # the backstop poll behind the silent stream
    "fail-job": ("result", 500),
    "content-policy": ("result", 422),
    "never-finish": ("cancel", 202),
    "expired-result": ("result", 404),
    "locked": ("submit", 403),
}


def path_name(session: GimpSession) -> str:
    return "GIMP " + ".".join(session.gimp_version.split(".")[:2])


def unchanged(info: dict) -> bool:
    """Failure: the image exactly as before, no undo step.  Success: every layer that was
    there is untouched; the only change is the result layer."""
    return info["kept"] if info["ok"] else info["same"] and not info["dirty"]


def record(rows: list[fault_matrix.Row]) -> None:
    target = os.environ.get(MATRIX_OUT_ENV)
    if not target:
        return
    with open(target, "a", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(asdict(row), ensure_ascii=False) + "\n")


@pytest.fixture(scope="module", params=["trixie", "forky"], ids=["gimp3.0", "gimp3.2"])
def matrix(request, vendor_dir):
    """Every scenario in one GIMP run: (report, submits per scenario, rows, profile leaks)."""
    session = GimpSession(request.param, vendor=lambda: vendor_dir)
    try:
        session.install_plugin()
        params = {"scenarios": list(fault_matrix.EXPECTED), "switch": SWITCH_PARAMS}
        with SwitchedServer(session, run_seconds=0.2) as server:
            env = server_env(
                server,
                KEY,
                FLUX_OUTPAINT_DEADLINE_S=str(fault_matrix.DEADLINE_S),
                FLUX_OUTPAINT_TIME_SCALE=str(fault_matrix.TIME_SCALE),
            )
            report = run(session, "fault_scenarios", params, env)
        rows = [
            fault_matrix.Row(
                name,
                path_name(session),
                bool(info["ok"]),
                fault_matrix.stable(info["message"] or ""),
                server.submits.get(name, -1),
                unchanged(info),
            )
            for name, info in ((n, report[n]) for n in fault_matrix.EXPECTED)
        ]
        record(rows)
        yield (
            report,
            server.submits,
            server.exchanges,
            rows,
            files_containing(session.host_profile, KEY),
        )
    finally:
        session.close()


@pytest.mark.parametrize("scenario", list(fault_matrix.EXPECTED))
def test_scenario_through_the_plugin(matrix, scenario):
    report, submits, exchanges, _, _ = matrix
    info = report[scenario]
    succeeds, fragment = fault_matrix.EXPECTED[scenario]
    assert info["undo_enabled"]
    assert submits[scenario] == fault_matrix.EXPECTED_SUBMITS[scenario], (submits, info)
    if scenario in EVIDENCE:
        assert EVIDENCE[scenario] in exchanges[scenario], exchanges[scenario]
    if succeeds:
        assert info["ok"], info
        assert info["layers"] == 2
        new = info["new"]
        assert (new["x"], new["y"], new["w"], new["h"]) == (0, 0, 112, 72)
        assert new["name"] == "Outpaint" and new["has_mask"] and new["position"] == 0
        assert info["kept"], "the source layer changed"
    else:
        assert not info["ok"] and info["status"] == "execution-error", info
        assert one_line(info["message"]), info
        assert fragment in info["message"], info["message"]
        assert info["same"], "the image changed"
        assert not info["dirty"], "an undo step was left behind"


def test_rows_say_what_the_tests_checked(matrix):
    _, _, _, rows, _ = matrix
    assert [r.scenario for r in rows] == list(fault_matrix.EXPECTED)
    for row in rows:
        assert row.ok is fault_matrix.EXPECTED[row.scenario][0], row
        assert row.unchanged, row
        assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", row.message), row  # ids stripped


def test_key_in_no_message_and_no_profile_file(matrix):
    report, _, _, _, leaks = matrix
    assert KEY not in repr(report)
    assert leaks == []


def test_a_forged_request_id_header_is_never_shown(matrix):
    report = matrix[0]
    assert "$(touch" not in repr(report)
    message = report["forged-request-id"]["message"]
    assert re.search(r"\(request [0-9a-f]{8}-[0-9a-f-]{27}\)", message), message  # ours
