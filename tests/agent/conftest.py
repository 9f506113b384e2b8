from __future__ import annotations

from datetime import UTC, datetime

import pytest


class FakeClock:
    """Wall-clock seconds that only move when the code under test sleeps."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds

    def iso(self, offset: float) -> str:
        return datetime.fromtimestamp(self.now + offset, UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
