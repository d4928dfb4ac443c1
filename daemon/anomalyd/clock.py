"""Time as a parameter: logic asks an injected clock, never the system directly."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Wall-clock seconds since the epoch."""

    def now(self) -> float: ...


class SystemClock:
    """The real clock; the only place the daemon reads wall time."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to: for backtests and tests."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def set(self, when: float) -> None:
        self._now = when

    def advance(self, seconds: float) -> None:
        self._now += seconds
