"""A field's daily (or other) cycle, learned online, so its windows are judged with
the cycle taken out: an ordinary day is not drift, a changed cycle is.

The profile is the field's mean at each of `bins` phases of the period (hourly by
default), interpolated linearly between phase centres. During the stream's first
period it only learns; then `decide` tests whether the phases differ by more than
sampling noise and by at least `min_strength` within-phase standard deviations.
A seasonal field is judged on residuals (value - profile at its phase), and the
profile goes on learning slowly (each phase remembers about `MEMORY_PERIODS`
periods), so a lasting change is reported for days before it becomes the norm; a
field found not seasonal drops its profile.

Memory: 3 doubles per bin (~0.6 KB at 24 bins), in flat arrays of Python floats: every
event updates one bin, and numpy's scalar indexing cost more than the rest of the
window's bookkeeping (numpy only where the profile decides, once per field).
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass

import numpy as np

#: About how many periods a seasonal profile remembers once decided.
MEMORY_PERIODS = 7
#: Events every phase needs in the first period to decide at all.
_MIN_PER_BIN = 2


@dataclass(slots=True)
class Profile:
    period: float
    counts: array[float]
    means: array[float]
    m2: array[float]  # within-phase sums of squares, during the first period only
    #: Per phase, the weight at which learning turns into a moving average (0: not yet).
    cap: float = 0.0

    @classmethod
    def empty(cls, period: float, bins: int) -> Profile:
        return cls(period, _zeros(bins), _zeros(bins), _zeros(bins))

    @property
    def bins(self) -> int:
        return len(self.means)

    def add(self, ts: float, value: float) -> None:
        b = self._bin(ts)
        count = self.counts[b] + 1.0
        if self.cap > 0.0:
            count = min(count, self.cap)
        delta = value - self.means[b]
        self.means[b] += delta / count
        if self.cap == 0.0:
            self.m2[b] += delta * (value - self.means[b])
        self.counts[b] = count

    def expected(self, ts: float) -> float:
        """The profile at `ts`, between the two nearest phase centres."""
        bins = len(self.means)
        at = (ts % self.period) / self.period * bins - 0.5
        low = math.floor(at)
        frac = at - low
        b0, b1 = low % bins, (low + 1) % bins
        return self.means[b0] * (1.0 - frac) + self.means[b1] * frac

    def strength(self) -> float:
        """The std of the phase means beyond their sampling noise, in within-phase std
        (0 if some phase saw too few events or the field is constant)."""
        counts = np.frombuffer(self.counts, dtype=np.float64)
        if counts.min() < _MIN_PER_BIN:
            return 0.0
        within = math.fsum(self.m2) / max(float(counts.sum()) - self.bins, 1.0)
        if within <= 0.0:
            return 0.0
        noise = float(np.mean(within / counts))
        spread = float(np.var(np.frombuffer(self.means, dtype=np.float64)))
        return math.sqrt(max(0.0, spread - noise) / within)

    def settle(self) -> None:
        """After the first period: from now on a moving average over ~MEMORY_PERIODS."""
        self.cap = max(2.0, MEMORY_PERIODS * float(np.median(self.counts)))
        self.m2 = _zeros(0)

    def _bin(self, ts: float) -> int:
        bins = len(self.means)
        return int((ts % self.period) / self.period * bins) % bins


def _zeros(n: int) -> array[float]:
    return array("d", bytes(8 * n))
