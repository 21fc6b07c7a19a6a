"""Fault scenarios of the local fal server: a registry, the choice of a run, and which fired.

A scenario imitates a way the real service misbehaves (fal-protocol.md §4, §5, §8.11) or, for
the hostile ones, what a broken proxy or an attacker might do (the bodies come from
``hostile``).  Each is registered here with what the server does and what a client should do
(``scripts/fal_local.py --scenario NAME[,NAME…]``; ``describe()`` prints the table).  "once"
scenarios hit the first matching request the server sees, then it behaves; the others hold for
every job.  Accepted submits are counted whatever the scenario (``LocalServer.submits``), so
tests can assert "exactly one submit".

To add one: ``fault(...)`` or ``hostile(...)`` below (or from another module of this package,
imported by ``backend``), then act on ``faults.active(name)`` / ``faults.once(name)`` where the
server or the backend decides.

Slow links are options, not scenarios: ``--bandwidth MBIT`` paces request and response bodies,
``--latency MS`` delays every response.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

When = Literal["once", "every job"]


@dataclass(frozen=True)
class Scenario:
    name: str
    when: When
    hostile: bool  # fal would not do this; a broken proxy or an attacker might
    server: str  # what the server does
    client: str  # what a client should do


REGISTRY: dict[str, Scenario] = {}


def register(scenario: Scenario) -> Scenario:
    """Add a scenario; a name registered twice is a bug, found at import."""
    if scenario.name in REGISTRY:
        raise ValueError(f"scenario {scenario.name!r} registered twice")
    if not (scenario.server and scenario.client):
        raise ValueError(f"scenario {scenario.name!r}: say what the server and a client do")
    REGISTRY[scenario.name] = scenario
    return scenario


def fault(name: str, when: When, *, server: str, client: str) -> Scenario:
    return register(Scenario(name, when, False, server, client))


def hostile(name: str, when: When, *, server: str, client: str) -> Scenario:
    return register(Scenario(name, when, True, server, client))


def known() -> frozenset[str]:
    return frozenset(REGISTRY)


def describe() -> str:
    """The registry as a table: name, what the server does, what a client should do."""
    width = max(len(n) for n in REGISTRY)
    rows = [f"{s.name:<{width}}  {s.server} → {s.client}" for s in REGISTRY.values()]
    return "\n".join(rows)


fault(
    "429-once",
    "once",
    server="answers the first submit 429, Retry-After: 1, creating no job",
    client="retry the submit; one job",
)
fault(
    "500-once",
    "once",
    server="answers the first status request 500 internal_error, with x-fal-request-id",
    client="(fal-client gives up on a 500; a poller may retry the poll)",
)
fault(
    "ingress-503",
    "once",
    server="answers the first status request 503 with an nginx page and no x-fal-request-id",
    client='retry (an "ingress error")',
)
fault(
    "drop-result",
    "once",
    server="closes the connection on the first result GET without replying",
    client="retry the GET, not the submit",
)
fault(
    "stall-status",
    "every job",
    server="sends SSE headers, then nothing at all (no keep-alives); polling still works",
    client="time out, poll status instead",
)
fault(
    "fail-job",
    "every job",
    server='completes with error; result 500 {"detail", "error_type": runner_server_error}',
    client="report the failure",
)
fault(
    "content-policy",
    "every job",
    server="completes; result 422 with detail[0].type content_policy_violation",
    client='report "rejected by the safety filter"',
)
fault(
    "never-finish",
    "every job",
    server="keeps the job IN_PROGRESS (a log line a second) until it is cancelled",
    client="give up at its deadline and cancel (result then 499)",
)
fault(
    "wrong-size",
    "every job",
    server="returns an image a quarter narrower than asked (the JSON width/height are truthful)",
    client="refuse to place it",
)
fault(
    "expired-result",
    "every job",
    server="completes, but the result is 404 (as after fal's retention window)",
    client='report "result no longer available"',
)
fault(
    "ignore-cancel",
    "every job",
    server="answers cancel 202, finishes the job anyway",
    client="accept the 200 result",
)
fault(
    "locked",
    "every job",
    server='answers submit and uploads 403 "User is locked…"; status still works',
    client="show the detail verbatim",
)
fault(
    "fail-once",
    "once",
    server="fails the first job that runs (as fail-job); the jobs after it succeed",
    client="report that one, use the others (variations)",
)
fault(
    "drift",
    "every job",
    server="succeeds, but the whole canvas comes back slightly blurred with a colour cast, "
    "over the original too (as a re-rendering model does)",
    client="measure the drift over the original and take it out of the new pixels",
)
fault(
    "drift-varying",
    "every job",
    server="as drift, but the cast ramps across the canvas (gain ±3-4 %, offset ±12-15 "
    "levels corner to corner, per channel)",
    client="follow the drift along the seam, not one global fit",
)
fault(
    "texture",
    "every job",
    server="fills the new area with the reference's own texture at full strength, at the "
    "request's scale, as a real model continues a photo",
    client="(on a canvas over 4 MP) put the original's grain back into the enlarged band",
)
fault(
    "moved-object",
    "every job",
    server="as drift, but a bright disc straddles the original's edge on the first grown "
    "side, shifted a few px outward (content the model moved or added near the seam)",
    client="take the drift out without letting the disc drag the colours of the new pixels",
)
hostile(
    "trickle-status",
    "every job",
    server="has no status stream (404) and sends each status poll one byte a second",
    client="give up at its deadline, name the request, cancel it",
)
hostile(
    "trickle-result",
    "every job",
    server="sends the result JSON one byte a second",
    client="give up at its deadline",
)
hostile(
    "trickle-image",
    "every job",
    server="sends the result image one byte a second",
    client="give up at its deadline",
)
hostile(
    "endless-sse-line",
    "every job",
    server="streams one `data:` line that never ends (64 KiB chunks); polling still works",
    client="drop the stream at a capped length, poll, succeed",
)
hostile(
    "huge-status",
    "every job",
    server="has no status stream; each poll is a 100 MB JSON body without Content-Length",
    client="refuse it without reading it all",
)
hostile(
    "huge-result",
    "every job",
    server="answers the result with 400 MB of JSON",
    client="refuse it without reading it all",
)
hostile(
    "size-lie",
    "every job",
    server="returns a PNG whose header claims 37.5× the requested size (same shape, ~340 KB)",
    client="refuse it before decoding",
)
hostile(
    "png-bomb",
    "every job",
    server="returns a PNG of the requested size whose data inflates to 256 MiB",
    client="stop inflating at the size's byte count, refuse it",
)
hostile(
    "truncated-image",
    "every job",
    server="returns the first half of the image",
    client="refuse it, never cache it",
)
hostile(
    "bad-result-url",
    "every job",
    server="gives `https://[::1` as the image URL",
    client="an error naming the request",
)
hostile(
    "redirect-result",
    "every job",
    server="answers the image URL with a 302 to itself",
    client="refuse the redirect by name",
)
hostile(
    "echo-key",
    "every job",
    server="puts the key it received, terminal escapes and a forged output line in the status logs",
    client="show the logs cleaned, the key nowhere",
)
hostile(
    "hostile-error",
    "every job",
    server="fails the job with such a text as its error",
    client="a clean one-line error",
)
hostile(
    "key-in-url",
    "every job",
    server="returns status/result/cancel URLs carrying `?key=<the key>`",
    client="ignore them; keep the key out of the journal",
)
hostile(
    "proxy-504",
    "once",
    server="accepts the first submit, then answers it 504 as another proxy would: "
    'no x-fal-request-id, no "nginx" in the body',
    client="never send it again (it may have been accepted)",
)
hostile(
    "mode-not-in-schema",
    "every job",
    server="rejects a body with a `mode` field (422), as the endpoint's first schema would",
    client="leave out the default mode",
)


def parse(names: str | Iterable[str] | None) -> frozenset[str]:
    """`"a,b"` or an iterable of names → a set; unknown names are a ValueError."""
    if names is None:
        return frozenset()
    if isinstance(names, str):
        names = names.split(",")
    chosen = frozenset(n.strip() for n in names if n and n.strip())
    unknown = sorted(chosen - known())
    if unknown:
        raise ValueError(
            f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(sorted(known()))}"
        )
    return chosen


class Faults:
    """The active scenarios and which "once" faults have already fired (thread-safe)."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.names = parse(list(names))
        self._fired: set[str] = set()
        self._lock = threading.Lock()

    def active(self, name: str) -> bool:
        return name in self.names

    def once(self, name: str) -> bool:
        """True exactly once: the first time anyone asks about an active once-scenario."""
        with self._lock:
            if name not in self.names or name in self._fired:
                return False
            self._fired.add(name)
            return True
