"""Calibrate a detector's raw scores into [0, 1), per series, online.

The same threshold must mean the same on every stream, whatever the scale of
its raw scores. Like NAB's best entries (HTM's "anomaly likelihood"), we ask how
unusual a raw score is *for this series*: it is compared with the long-run
distribution of the series' raw scores (a normal fit to log(1 + raw): raw
scores are positive and skewed, and log1p keeps the near-zero scores of a quiet
series from stretching the scale). The tail probability p of a score that high
becomes, with x = -log10(p) (the "one in 10^x" of the point),

    score = x / (x + 6)

so 0.5 means one normal point in a million, 0.67 one in 10^12, and the score
never saturates: an extreme point still ranks above a merely rare one, which
lets a threshold separate them (measured: saturating at 1.0 made every
threshold worse than never firing on NAB, because real raw scores have heavier
tails than the fit).
"""

from __future__ import annotations

import math

from anomalyd.features import RobustEW

#: x at which the score is 0.5: one normal point in a million.
HALF_DECADES = 6.0
_SQRT2 = math.sqrt(2.0)
_LN10 = math.log(10.0)


class Calibrator:
    __slots__ = ("_long",)

    def __init__(self, window: int) -> None:
        self._long = RobustEW(window, clip=6.0)

    @property
    def count(self) -> int:
        return self._long.count

    def score(self, raw: float) -> float:
        """The calibrated score of this raw score, in [0, 1)."""
        if self._long.count < 2:
            return 0.0
        z = (math.log1p(max(raw, 0.0)) - self._long.mean) / max(self._long.std, 1e-6)
        decades = -log10_upper_tail(z)
        return decades / (decades + HALF_DECADES)

    def learn(self, raw: float) -> None:
        """Learn a raw score of a point judged normal."""
        self._long.update(math.log1p(max(raw, 0.0)))


def log10_upper_tail(z: float) -> float:
    """log10 P(Z >= z) for a standard normal, accurate far into the tail (no underflow)."""
    if z < 30.0:
        return math.log10(max(0.5 * math.erfc(z / _SQRT2), 1e-300))
    # Mills' ratio: P(Z >= z) ~ phi(z) / z for large z.
    return -(z * z / 2.0 + math.log(z * math.sqrt(2.0 * math.pi))) / _LN10
