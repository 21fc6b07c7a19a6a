"""Every failure the user can meet: one clear line, the image untouched, at most one submit.

Each case is its own GIMP run, because the plug-in reads the server URL and the key from
the environment GIMP was started with.  The batch is inside/faults.py.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import pytest

from .harness import (
    KEY,
    files_containing,
    local_server,
    one_line,
    run,
    server_env,
    words,
)


@dataclass(frozen=True)
class Fault:
    name: str
    expect: tuple[str, ...]  # the message holds one of these (lower case)
    scenario: str | None = None  # flux_outpaint_fal_local scenario; "" = a server without faults
    key: str | None = KEY
    submits: int = 1
    env: tuple[tuple[str, str], ...] = ()
    canvas: tuple[int, int] = (400, 300)
    layer: tuple[int, int, int, int] = (50, 50, 300, 200)
    succeeds: bool = False


FAULTS = [
    Fault("no_key", ("no fal api key",), scenario="", key=None, submits=0),
    Fault(
        "bad_key", ("key", "auth", "401", "unauthor"), scenario="", key="wrong-key-0000", submits=0
    ),
    Fault("unreachable", ("could not reach", "unreachable"), submits=0),
    Fault(
        "too_large",
        ("cannot fit",),
        scenario="",
        submits=0,
        canvas=(9000, 80),
        layer=(4450, 8, 100, 64),
    ),
    Fault(
        "nothing_to_expand", ("nothing to expand",), scenario="", submits=0, layer=(0, 0, 400, 300)
    ),
    Fault("content_policy", ("safety", "content"), scenario="content-policy"),
    Fault(
        "timed_out",
        ("timed out", "time"),
        scenario="never-finish",
        env=(("FLUX_OUTPAINT_DEADLINE_S", "4"),),
    ),
    Fault("wrong_size", ("instead of",), scenario="wrong-size"),
    Fault("job_failed", ("error", "failed"), scenario="fail-job"),
    Fault(
        "expired", ("no longer", "expired", "not found", "unavailable"), scenario="expired-result"
    ),
    Fault("locked", ("locked",), scenario="locked", submits=0),
    Fault("rate_limited_once", (), scenario="429-once", succeeds=True),
]


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_fault(gimp, fault: Fault):
    gimp.install_plugin()
    scenarios = [fault.scenario] if fault.scenario else []
    server_cm = (
        local_server(scenarios=scenarios)
        if fault.scenario is not None
        else contextlib.nullcontext(None)
    )
    with server_cm as server:
        env = server_env(server, fault.key, **dict(fault.env))
        report = run(gimp, "faults", {"canvas": fault.canvas, "layer": fault.layer}, env)
        submits = len(server.submits) if server is not None else 0
    if fault.succeeds:
        assert report["ok"], report
        assert report["layers"] == 2
    else:
        assert not report["ok"] and report["status"] == "execution-error", report
        assert one_line(report["message"]), report
        assert any(w in words(report["message"]) for w in fault.expect), report["message"]
        assert report["unchanged"]
    assert submits == fault.submits
    assert KEY not in (report["message"] or "")
    assert files_containing(gimp.host_profile, KEY) == []
