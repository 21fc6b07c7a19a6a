"""Every local-server fault through the CLI: one submit, a clear line, the input untouched."""

from pathlib import Path

import pytest
from cli_support import run
from flux_outpaint_fal_local import local_cases, scenarios
from flux_outpaint_fal_local import matrix as fault_matrix

pytestmark = pytest.mark.server  # the local fal server on loopback

EXPECTED, EXPECTED_SUBMITS = fault_matrix.EXPECTED, fault_matrix.EXPECTED_SUBMITS
parse_table, run_cli_case = fault_matrix.parse_table, fault_matrix.run_cli_case
# never-finish and the trickles wait out the whole (scaled) deadline; the others take less
SCENARIOS = [
    pytest.param(name, marks=pytest.mark.slow) if name in fault_matrix.SLOW else name
    for name in fault_matrix.EXPECTED
]

TABLE = Path(__file__).resolve().parent.parent / "docs" / "fault-matrix.md"


def test_every_registered_scenario_has_an_expected_outcome():
    assert set(EXPECTED) == scenarios.known()
    assert set(EXPECTED_SUBMITS) == set(EXPECTED) and set(EXPECTED) >= fault_matrix.SLOW


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_cli_fault(scenario, tmp_path):
    row = run_cli_case(scenario, tmp_path, run)
    succeeds, fragment = EXPECTED[scenario]
    assert row.ok is succeeds, row
    assert row.submits == EXPECTED_SUBMITS[scenario], row
    assert row.unchanged, row
    if not succeeds:
        assert fragment in row.message, row
        assert "\n" not in row.message and row.message
        assert fault_matrix.KEY not in row.message


@pytest.mark.parametrize("scenario", ["echo-key", "hostile-error", "key-in-url", "key-in-disguise"])
def test_hostile_text_reaches_neither_the_terminal_nor_the_disk(scenario, tmp_path):
    row, proc, data = fault_matrix.run_cli(scenario, tmp_path, run)
    assert row.ok is EXPECTED[scenario][0], row
    shown = proc.stdout + proc.stderr
    assert fault_matrix.KEY not in shown
    assert not any(ch in shown for ch in "\x1b\x07\r\x9b"), repr(shown)
    # one line per phase and per outcome: the forged "-> /tmp/elsewhere.png" is never a line
    assert not any(line.startswith("in.png ->") for line in shown.splitlines())
    written = [p for p in data.rglob("*") if p.is_file()]
    assert written, "the journal should exist"
    for path in written:
        assert fault_matrix.KEY.encode() not in path.read_bytes(), path
    journal = (data / "journal.jsonl").read_text()
    assert "\x1b" not in journal and "\\u001b" not in journal


def _squeezed(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def test_the_key_in_disguise_is_shown_and_kept_nowhere(tmp_path):
    row, proc, data = fault_matrix.run_cli("key-in-disguise", tmp_path)
    assert row.ok, row
    shown = _squeezed(proc.stdout + proc.stderr)
    secret = fault_matrix.KEY.split(":")[1]
    for form in (_squeezed(secret), _squeezed(secret)[::-1]):
        for start in range(0, len(form) - 12, 4):
            assert form[start : start + 12] not in shown, form[start : start + 12]
    cached = [p for p in data.rglob("*") if p.suffix in (".png", ".jpg")]
    assert cached, "the result should be cached"
    for path in cached:
        blob = path.read_bytes()
        assert not any(kind in blob for kind in (b"tEXt", b"zTXt", b"iTXt")), path
        assert secret.encode() not in blob


def test_a_forged_request_id_header_is_never_the_request(tmp_path):
    from flux_outpaint.journal import Journal

    row, proc, data = fault_matrix.run_cli("forged-request-id", tmp_path)
    shown = proc.stdout + proc.stderr
    assert not row.ok and "$(touch" not in shown, shown
    assert max(len(line) for line in shown.splitlines()) < 400
    (entry,) = Journal(data / "journal.jsonl").entries()
    assert f"--recover {entry.request_id}" in shown  # the id from the submit answer


@pytest.mark.parametrize("case", list(local_cases.CASES))
def test_cli_local_case(case, tmp_path):
    row = local_cases.run_case(case, tmp_path)
    if row.code is None:
        pytest.skip(row.line)  # the platform lacks it; the table says "not run"
    what, code, fragment = local_cases.CASES[case]
    assert row.code == code, row
    assert fragment in row.line, row
    assert row.submits == local_cases.SUBMITS[case], row
    assert row.leftovers == 0, row


def test_committed_table_has_every_local_case():
    found = local_cases.parse(TABLE.read_text())
    assert sorted(found) == sorted(local_cases.CASES)
    for case, (code, submits, left) in found.items():
        assert code in ("not run", str(local_cases.CASES[case][1])), case
        assert submits == local_cases.SUBMITS[case] and left == 0, case


def test_committed_table_matches_expectations():
    rows = parse_table(TABLE.read_text())
    paths = {r.path for r in rows}
    assert "CLI" in paths
    for path in paths:
        assert sorted(r.scenario for r in rows if r.path == path) == sorted(EXPECTED), path
    for row in rows:
        succeeds, fragment = EXPECTED[row.scenario]
        assert row.ok is succeeds and row.unchanged, row
        assert row.submits == EXPECTED_SUBMITS[row.scenario], row
        assert fragment in row.message, row


# The queue client (through run_job) under each fault: success, or exactly this error class.
PIPELINE_OUTCOME = {
    "429-once": None,
    "500-once": None,
    "ingress-503": None,
    "drop-result": None,
    "stall-status": None,
    "ignore-cancel": None,
    "wrong-size": None,  # whole and paid for: the caller refuses to place it
    "fail-job": "ServerError",
    "content-policy": "ContentPolicyError",
    "never-finish": "OutpaintTimeoutError",
    "expired-result": "ResultUnavailableError",
    "locked": "AuthError",
    "trickle-status": "FinishedLateError",  # fal had finished it: recoverable
    "trickle-result": "FinishedLateError",  # fal had finished it: recoverable
    "trickle-image": "FinishedLateError",  # fal had finished it: recoverable
    "endless-sse-line": None,
    "huge-status": "ApiError",
    "huge-result": "ApiError",
    "size-lie": "ResultError",
    "png-bomb": "ResultError",
    "truncated-image": "ResultError",
    "bad-result-url": "ResultError",
    "redirect-result": "ResultError",
    "echo-key": None,
    "hostile-error": "ServerError",
    "key-in-url": None,
    "proxy-504": "SubmitUnknownError",
    "mode-not-in-schema": None,
    "fail-once": "ServerError",
    "drift": None,  # a colour cast is the caller's to take out
    "drift-varying": None,
    "texture": None,  # grain is the caller's to put back
    "moved-object": None,  # as drift: the caller's to take out
    "gzip-bomb-submit": "ServerError",  # the body unread: the status says enough
    "gzip-bomb-status": "ApiError",
    "gzip-bomb-result": "ApiError",
    "gzip-bomb-image": "ResultError",
    "gzip-result": None,
    "scan-bomb": "ResultError",
    "forged-request-id": "RateLimitError",
    "key-in-disguise": None,
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_queue_client_fault(scenario, tmp_path):
    import flux_outpaint_fal_local
    from flux_outpaint import geometry, payload, planning
    from flux_outpaint.errors import user_message
    from flux_outpaint.journal import Journal
    from flux_outpaint.pipeline import Job, run_job
    from flux_outpaint.queue_client import FalQueueClient
    from flux_outpaint_cli.imageio import encode

    plan = planning.make_plan(geometry.from_numbers(96, 64, geometry.Expansion(16, 16, 0, 0)))
    rgba = bytes([200, 100, 50, 255]) * (96 * 64)
    with flux_outpaint_fal_local.start_server(scenarios=[scenario], run_seconds=0.2) as server:
        client = FalQueueClient(
            server.base_url, fault_matrix.KEY, time_scale=fault_matrix.TIME_SCALE
        )
        try:
            result = run_job(
                Job(rgba, plan, payload.RequestOptions()),
                client=client,
                journal=Journal(tmp_path / "journal.jsonl"),
                encoder=encode,
                deadline_s=fault_matrix.deadline_s(scenario),
            )
            outcome, message = None, ""
        except Exception as exc:  # noqa: BLE001 - the class is what is checked
            outcome, message = type(exc).__name__, user_message(exc)
        finally:
            client.close()
        submits = len(server.submits)
    assert outcome == PIPELINE_OUTCOME[scenario], message
    assert submits == EXPECTED_SUBMITS[scenario]
    if outcome is None:
        assert result.data[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert EXPECTED[scenario][1] in message and "\n" not in message
