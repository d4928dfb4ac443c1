"""How unusual a series' recent raw scores are for that series, as a score in [0, 1].

After Numenta's anomaly likelihood (Ahmad et al. 2017, Neurocomputing 262): the mean of
the last `short` raw scores (taken as log(1 + raw), so the heavy tail of raw scores on
real data does not dominate their spread) is compared with the long-run distribution of such means
(exponentially weighted mean and variance over about `long` points, or over the points
seen while fewer). One noisy point
moves the short mean by a tenth of its raw score and does not page; a very large point
or a sustained change moves it far and does. Raw scores of any scale, from any
detector, become one scale, so one threshold means the same on every stream.

With p the upper tail probability of the short mean under a normal fit of the long-run
distribution, the score is -log10(p) / 10 (NAB's log-likelihood reading): 0.5 means
the recent scores are this high once in 10^5, 1.0 once in 10^10 or rarer.
"""

from __future__ import annotations

import math
from array import array

from anomalyd.plain import (
    Plain,
    number,
    numbers,
    read_float,
    read_floats,
    read_int,
    read_object,
    read_spread,
    required,
)

#: Decades of rarity that make a score of 1.0.
FULL_DECADES = 10.0
#: The long-run spread never falls below this: a perfectly regular series would
#: otherwise call its first wobble infinitely unusual.
_MIN_STD = 1e-3
#: Raw scores are clipped here: an overflowing detector cannot poison the statistics.
MAX_RAW = 1e6
_SQRT2 = math.sqrt(2.0)
_LN10 = math.log(10.0)


class AnomalyLikelihood:
    __slots__ = ("_alpha", "_count", "_mean", "_next", "_recent", "_sum", "_var")

    def __init__(self, short: int, long: int) -> None:
        self._recent = array("d")  # the last `short` raw scores, a ring once full
        self._recent.extend([0.0] * short)
        self._next = 0
        self._sum = 0.0
        self._alpha = 2.0 / (long + 1.0)
        self._count = 0  # short means learned into the long-run statistics
        self._mean = 0.0
        self._var = 0.0

    def score(self, raw: float) -> float:
        """Take the next raw score; the likelihood score of the recent ones, in [0, 1].
        The long-run statistics learn every short mean after it was judged: they
        describe the scores the series produces, anomalies included, as Numenta's do."""
        short_mean = self._push(raw)
        score = self._judge(short_mean) if self._count >= 2 else 0.0
        self._learn(short_mean)
        return score

    def state(self) -> dict[str, Plain]:
        """What it has learned, as plain values (`anomalyd.plain`); the window lengths
        come from the config it is built with."""
        return {
            "recent": numbers(self._recent),
            "next": self._next,
            "sum": number(self._sum),
            "count": self._count,
            "mean": number(self._mean),
            "var": number(self._var),
        }

    def load_state(self, state: Plain, where: str) -> None:
        data = read_object(state, where)
        short = len(self._recent)
        recent = read_floats(required(data, "recent", where), f"{where}.recent", short)
        self._recent[:] = array("d", recent)
        self._next = read_int(required(data, "next", where), f"{where}.next", 0, short - 1)
        self._sum = read_float(required(data, "sum", where), f"{where}.sum")
        self._count = read_int(required(data, "count", where), f"{where}.count")
        self._mean = read_float(required(data, "mean", where), f"{where}.mean")
        self._var = read_spread(required(data, "var", where), f"{where}.var")

    def _push(self, raw: float) -> float:
        raw = raw if raw < MAX_RAW else MAX_RAW  # also maps +inf; NaN fails `<`: clipped too
        raw = math.log1p(raw) if raw > 0.0 else 0.0
        recent, i = self._recent, self._next
        self._sum += raw - recent[i]
        recent[i] = raw
        self._next = (i + 1) % len(recent)
        # Until the ring is full, the mean is over the points seen.
        seen = min(self._count + 1, len(recent))
        return max(self._sum, 0.0) / seen

    def _judge(self, short_mean: float) -> float:
        z = (short_mean - self._mean) / max(math.sqrt(self._var), _MIN_STD)
        if z <= 0.0:
            return 0.0
        return min(1.0, -log10_upper_tail(z) / FULL_DECADES)

    def _learn(self, short_mean: float) -> None:
        count = self._count = self._count + 1
        if count == 1:
            self._mean = short_mean
            return
        # Until `long` short means are in, a span of `count`: the recent half weighs most.
        # A plain mean there (1 / count) kept the young features' first, wild scores at
        # full weight for `long` points, which is most of a short series (measured on
        # NAB's files: 62.5 to 70.9 for long 4000 to 1000; 71.0 to 72.3 with this).
        alpha = max(self._alpha, 2.0 / (count + 1.0))
        diff = short_mean - self._mean
        self._mean += alpha * diff
        self._var = (1.0 - alpha) * (self._var + alpha * diff * diff)


def log10_upper_tail(z: float) -> float:
    """log10 P(Z >= z) for a standard normal, accurate far into the tail (no underflow)."""
    if z < 30.0:
        return math.log10(max(0.5 * math.erfc(z / _SQRT2), 1e-300))
    # Mills' ratio: P(Z >= z) ~ phi(z) / z for large z.
    return -(z * z / 2.0 + math.log(z * math.sqrt(2.0 * math.pi))) / _LN10
