"""Test doubles shared by several test modules."""

from __future__ import annotations


class FakeClock:
    """A monotonic clock that only moves when slept on: backoff and polls take no real time.

    Pass the instance as ``clock=`` and its ``sleep`` as ``sleep=``; ``slept`` lists every
    pause asked for, in order.
    """

    def __init__(self, start: float = 100.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
