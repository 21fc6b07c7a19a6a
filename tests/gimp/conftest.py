"""Real-GIMP tests: every test here is marked ``gimp`` and runs only with
FLUX_OUTPAINT_GIMP_TESTS=1; then a missing sandbox is a failure, never a skip."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from script_modules import script

from .sandbox import GimpSession, build_vendor

gimp_sandbox = script("gimp_sandbox")

SANDBOXES = ("trixie", "forky")
IDS = {"trixie": "gimp3.0", "forky": "gimp3.2"}
ENABLED = os.environ.get("FLUX_OUTPAINT_GIMP_TESTS") == "1"
SKIP_REASON = (
    "real-GIMP tests need FLUX_OUTPAINT_GIMP_TESTS=1 (python3 scripts/run_tests.py --gimp)"
)
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.gimp)
            # one xdist worker runs them all, in order: one GIMP at a time, module fixtures once
            item.add_marker(pytest.mark.xdist_group("gimp"))
            if not ENABLED:
                item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


@pytest.fixture(params=SANDBOXES, ids=[IDS[n] for n in SANDBOXES])
def sandbox_name(request: pytest.FixtureRequest) -> str:
    """The sandbox under test ("trixie" = GIMP 3.0, "forky" = GIMP 3.2); fails if missing."""
    name = request.param
    if os.geteuid() != 0:
        pytest.fail("real-GIMP tests run GIMP in chroots and need root", pytrace=False)
    if gimp_sandbox.info(name) is None:
        pytest.fail(
            f"GIMP sandbox {name!r} is missing or out of date under "
            f"{gimp_sandbox.cache_dir()}: run "
            "`python3 scripts/gimp_sandbox.py ensure trixie forky` (as root)",
            pytrace=False,
        )
    return name


@pytest.fixture(scope="session")
def vendor_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plug-in's vendor/ (httpx stack), built once per test session."""
    return build_vendor(tmp_path_factory.mktemp("gimp-vendor") / "vendor")


@pytest.fixture
def gimp(sandbox_name: str, request: pytest.FixtureRequest) -> Iterator[GimpSession]:
    """A fresh GIMP profile (copied from the pre-warmed template) in the sandbox under test."""
    session = GimpSession(sandbox_name, vendor=lambda: request.getfixturevalue("vendor_dir"))
    try:
        yield session
    finally:
        session.close()
