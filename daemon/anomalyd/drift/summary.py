"""Per-window statistics of one field: moments, extremes, quantiles and a sample.

Everything is streaming and bounded: Welford's mean and variance, the min and
max, and a reservoir of at most K values, from which the distribution distances
and the quantiles come when the window closes (exact up to K values, a uniform
sample's estimate beyond). Per-event P² estimators cost three times what all the
rest of a window's bookkeeping does, for estimates no better than the sample's.
Memory per field and window is the reservoir's `8 * K` bytes plus a few words.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from anomalyd.drift.sample import FloatArray, Reservoir

QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True, slots=True)
class Stats:
    """What a window (or a pooled reference) looked like. `std` is the sample std (n - 1)."""

    count: int
    mean: float
    std: float
    min: float
    max: float
    p50: float
    p95: float
    p99: float

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
            "p50": self.p50,
            "p95": self.p95,
            "p99": self.p99,
        }


class Summary:
    """Accumulates one field's values in one window."""

    __slots__ = ("_m2", "_max", "_mean", "_min", "count", "sample")

    def __init__(self, sample_size: int, seed: int) -> None:
        self.count = 0
        self._mean = 0.0
        self._m2 = 0.0
        self._min = math.inf
        self._max = -math.inf
        self.sample = Reservoir(sample_size, seed)

    def add(self, value: float) -> None:
        self.count += 1
        delta = value - self._mean
        self._mean += delta / self.count
        self._m2 += delta * (value - self._mean)
        if value < self._min:
            self._min = value
        if value > self._max:
            self._max = value
        self.sample.add(value)

    def moments(self) -> tuple[int, float, float, float, float]:
        """count, mean, sum of squares, min, max (for a snapshot)."""
        return self.count, self._mean, self._m2, self._min, self._max

    @classmethod
    def restored(
        cls, moments: tuple[int, float, float, float, float], sample: Reservoir
    ) -> Summary:
        summary = cls(1, 0)
        summary.count, summary._mean, summary._m2, summary._min, summary._max = moments
        summary.sample = sample
        return summary

    def stats(self, sample: FloatArray) -> Stats:
        """Only for a window that saw at least one value; `sample` is `self.sample.sorted()`."""
        p50, p95, p99 = _quantiles(sample)
        return Stats(
            count=self.count,
            mean=self._mean,
            std=_std(self._m2, self.count),
            min=self._min,
            max=self._max,
            p50=p50,
            p95=p95,
            p99=p99,
        )


def pooled(parts: Sequence[Stats], sample: FloatArray) -> Stats:
    """The stats of several windows taken together (a rolling reference).

    Count, mean, std, min and max are exact (Chan's parallel combination of
    the moments); the quantiles come from the pooled samples, since P²
    estimators cannot be merged.
    """
    if len(parts) == 1:
        return parts[0]
    count = sum(p.count for p in parts)
    mean = sum(p.count * p.mean for p in parts) / count
    m2 = sum(p.std**2 * (p.count - 1) + p.count * (p.mean - mean) ** 2 for p in parts)
    p50, p95, p99 = _quantiles(sample)
    return Stats(
        count=count,
        mean=mean,
        std=_std(m2, count),
        min=min(p.min for p in parts),
        max=max(p.max for p in parts),
        p50=p50,
        p95=p95,
        p99=p99,
    )


def _quantiles(sorted_sample: FloatArray) -> tuple[float, float, float]:
    """numpy's default (linear) quantiles of an already sorted sample, without its
    generic machinery (sorting again, broadcasting), which costs 20 µs a window."""
    p50, p95, p99 = (_interpolate(sorted_sample, q) for q in QUANTILES)
    return p50, p95, p99


def _interpolate(values: FloatArray, q: float) -> float:
    at = q * (len(values) - 1)
    low = int(at)
    high = min(low + 1, len(values) - 1)
    return float(values[low] + (values[high] - values[low]) * (at - low))


def _std(m2: float, count: int) -> float:
    return math.sqrt(max(m2, 0.0) / (count - 1)) if count > 1 else 0.0
