"""Fixtures shared by the test modules (the real-GIMP ones add theirs in tests/gimp/)."""

from __future__ import annotations

import pytest
from cli_support import make_env, serve
from fakes import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """The CLI's environment: its own data and config folders, no key, short retry pauses."""
    return make_env(tmp_path)


@pytest.fixture
def server():
    """The local fal server in this process (the CLI reaches it with --base-url)."""
    yield from serve()
