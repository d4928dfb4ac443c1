"""A value beyond the range the series has shown so far, by a margin.

After the "spatial anomaly" of Numenta's NAB detector, learned online here: the lowest
and highest values seen so far (never a range given in advance, which a live stream
cannot know), widened by `tolerance` times their span. A series that has never gone
above 80 and now reads 120 is news, however slowly its statistics move.
"""

from __future__ import annotations

import math

from anomalyd.plain import Plain, number, read_floats


class Extremes:
    __slots__ = ("_high", "_low", "_tolerance")

    def __init__(self, tolerance: float) -> None:
        self._tolerance = tolerance
        self._low = math.inf
        self._high = -math.inf

    def beyond(self, value: float) -> bool:
        """True when `value` lies outside the widened range of earlier values."""
        span = self._high - self._low
        if not span > 0.0 or math.isinf(span):  # fewer than two distinct values, or none
            return False
        margin = self._tolerance * span
        return value > self._high + margin or value < self._low - margin

    @property
    def range(self) -> tuple[float, float]:
        return self._low, self._high

    def learn(self, value: float) -> None:
        if math.isfinite(value):
            self._low = min(self._low, value)
            self._high = max(self._high, value)

    def state(self) -> list[Plain]:
        """The range seen so far, as plain values (`anomalyd.plain`)."""
        return [number(self._low), number(self._high)]

    def load_state(self, state: Plain, where: str) -> None:
        self._low, self._high = read_floats(state, where, 2)
