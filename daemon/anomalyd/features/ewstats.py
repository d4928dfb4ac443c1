"""Exponentially weighted location and scale in a few floats.

Robust by winsorising: a point further than `clip` standard deviations from the
mean updates the statistics as if it sat at that distance, so one spike cannot
drag the mean or blow up the scale it is itself measured with.
"""

from __future__ import annotations

import math

from anomalyd.plain import Plain, number, read_float, read_int, read_list, read_spread


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

    def state(self) -> list[Plain]:
        """What it has learned, as plain values (`anomalyd.plain`): count, mean, variance.
        Its window and clip come from the config it is built with."""
        return [self.count, number(self.mean), number(self.var)]

    def load_state(self, state: Plain, where: str) -> None:
        count, mean, var = read_list(state, where, 3)
        self.count = read_int(count, f"{where}[0]")
        self.mean = read_float(mean, f"{where}[1]")
        self.var = read_spread(var, f"{where}[2]")
