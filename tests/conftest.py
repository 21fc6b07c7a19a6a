"""Fixtures shared by the test modules (the real-GIMP ones add theirs in tests/gimp/)."""

from __future__ import annotations

import pytest
from fakes import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
