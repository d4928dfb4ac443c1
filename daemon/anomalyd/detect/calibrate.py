"""Calibrate a detector's raw scores into [0, 1], per series, online.

The same threshold must mean the same on every stream, whatever the scale of
its raw scores. Like NAB's best entries (HTM's "anomaly likelihood"), we ask how
unusual the recent raw scores are *for this series*: a short average of raw
scores is compared with the long-run distribution of raw scores (a normal fit
to log(1 + raw): raw scores are positive and skewed, and log1p keeps the near-zero
scores of a quiet series from stretching the scale), and the tail probability p of
seeing something that high is mapped to

    score = min(1, -log10(p) / DECADES)

so a score s means "a normal point gets a score this high about once in
10^(DECADES·s) points": 0.5 is one in a million with the default DECADES = 12.
"""

from __future__ import annotations

import math

from anomalyd.features import RobustEW

DECADES = 12.0
_SHORT = 3  # points in the short average: one outlier counts; a single jitter less so


class Calibrator:
    __slots__ = ("_long", "_short")

    def __init__(self, window: int) -> None:
        self._long = RobustEW(window, clip=6.0)
        self._short: float | None = None

    @property
    def count(self) -> int:
        return self._long.count

    def score(self, raw: float) -> float:
        """The calibrated score of this raw score (also advances the short average)."""
        log_raw = math.log1p(max(raw, 0.0))
        short = log_raw if self._short is None else self._short + (log_raw - self._short) / _SHORT
        self._short = max(short, log_raw)  # a sudden jump counts at once; decay is gradual
        if self._long.count < 2:
            return 0.0
        z = (self._short - self._long.mean) / max(self._long.std, 1e-6)
        tail = 0.5 * math.erfc(z / math.sqrt(2.0))
        return min(1.0, -math.log10(max(tail, 1e-300)) / DECADES)

    def learn(self, raw: float) -> None:
        """Learn a raw score of a point judged normal."""
        self._long.update(math.log1p(max(raw, 0.0)))
