"""Exponentially weighted location and scale in a few floats.

Robust by winsorising: a point further than `clip` standard deviations from the
mean updates the statistics as if it sat at that distance, so one spike cannot
drag the mean or blow up the scale it is itself measured with.
"""

from __future__ import annotations

import math


class RobustEW:
    __slots__ = ("_alpha", "_clip", "count", "mean", "var")

    def __init__(self, window: int, clip: float = 4.0) -> None:
        self._alpha = 2.0 / (window + 1.0)  # the usual EMA span-to-alpha mapping
        self._clip = clip
        self.count = 0
        self.mean = 0.0
        self.var = 0.0

    @property
    def std(self) -> float:
        return math.sqrt(self.var)

    def z(self, x: float, floor: float) -> float:
        """Distance of `x` from the mean in standard deviations (scale at least `floor`)."""
        return (x - self.mean) / max(self.std, floor)

    def update(self, x: float) -> None:
        # Called three times per event: locals and comparisons rather than properties
        # and min/max calls (the same arithmetic).
        count = self.count = self.count + 1
        mean = self.mean
        if count == 1:
            self.mean = x
            return
        # Early on, weigh points equally (plain running mean), then exponentially.
        alpha = self._alpha
        if 1.0 / count > alpha:
            alpha = 1.0 / count
        var = self.var
        if var > 0.0:
            limit = self._clip * math.sqrt(var)
            if x > mean + limit:
                x = mean + limit
            elif x < mean - limit:
                x = mean - limit
        diff = x - mean
        step = alpha * diff * diff
        if step == math.inf:  # e.g. 1e308 before there is a scale: learned, it blinds for good
            self.count = count - 1
            return
        self.mean = mean + alpha * diff
        self.var = (1.0 - alpha) * (var + step)

    def __getstate__(self) -> tuple[float, float, int, float, float]:
        return (self._alpha, self._clip, self.count, self.mean, self.var)

    def __setstate__(self, state: tuple[float, float, int, float, float]) -> None:
        self._alpha, self._clip, self.count, self.mean, self.var = state
