"""A bounded, seeded uniform sample of a window's values (reservoir sampling).

PSI, KS and Wasserstein compare whole distributions, which needs values, not
moments. A window may hold millions of events; the reservoir keeps at most
`size` of them, each value of the window equally likely to be kept (Vitter's
Algorithm R), in a flat array of doubles: `8 * size` bytes. Below `size` values
it holds the window exactly and draws no random numbers at all.

The generator is seeded from the stream, field and window start, so a backtest
and a replay keep the same values and reach the same verdicts.

A window that joins a rolling reference of N windows keeps only `thin(sample,
ceil(K / N))`: its quantile function at evenly spaced points, so the pooled
reference holds about one window's worth of values, not N.
"""

from __future__ import annotations

import math
import random
import zlib
from array import array

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def window_seed(seed: int, stream: str, field: str, start: float) -> int:
    """A seed stable across processes (`hash()` of a str is salted per process)."""
    return zlib.crc32(f"{seed}\x00{stream}\x00{field}\x00{start!r}".encode())


class Reservoir:
    """At most `size` values, a uniform sample of everything added."""

    __slots__ = ("_rng", "_seed", "_seen", "_size", "_values")

    def __init__(self, size: int, seed: int) -> None:
        self._size = size
        self._seed = seed
        self._seen = 0
        self._values = array("d")
        self._rng: random.Random | None = None  # created once the reservoir is full

    @property
    def seen(self) -> int:
        return self._seen

    def add(self, value: float) -> None:
        self._seen += 1
        if len(self._values) < self._size:
            self._values.append(value)
            return
        if self._rng is None:
            self._rng = random.Random(self._seed)
        # Keep the new value with probability size/seen, in place of a uniform victim.
        slot = int(self._rng.random() * self._seen)
        if slot < self._size:
            self._values[slot] = value

    def state(self) -> tuple[int, int, list[float]]:
        """seed, seen, values. The generator's state is not kept: a restored full
        reservoir draws from a generator seeded again from (seed, seen)."""
        return self._seed, self._seen, self._values.tolist()

    @classmethod
    def from_state(cls, size: int, seed: int, seen: int, values: list[float]) -> Reservoir:
        reservoir = cls(size, seed)
        reservoir._seen = seen
        reservoir._values = array("d", values[:size])
        if seen > size:
            reservoir._rng = random.Random(zlib.crc32(f"{seed}\x00{seen}".encode()))
        return reservoir

    def sorted(self) -> FloatArray:
        """The kept values, sorted (what every distance in `distance` takes)."""
        return np.sort(np.frombuffer(self._values, dtype=np.float64))


def thin(sorted_values: FloatArray, size: int) -> FloatArray:
    """At most `size` (>= 2) evenly spaced order statistics of `sorted_values`, its min
    and max included: deterministic, and within 1/size of it in KS distance.

    A sample of `size` values or fewer comes back as it is.
    """
    n = sorted_values.size
    if n <= size:
        return sorted_values
    # The order statistic j * (n - 1) / (size - 1), rounded, for j = 0 .. size - 1.
    at = (np.arange(size) * (n - 1) + (size - 1) // 2) // (size - 1)
    return sorted_values[at]


def thinned_size(sample_size: int, windows: int) -> int:
    """How many values each window of a pool of `windows` keeps: ceil(K / N), so the
    pool holds at most about K values (and never fewer than a window's min and max)."""
    return max(2, math.ceil(sample_size / windows))
