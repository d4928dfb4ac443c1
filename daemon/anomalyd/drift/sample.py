"""A bounded, seeded uniform sample of a window's values (reservoir sampling).

PSI, KS and Wasserstein compare whole distributions, which needs values, not
moments. A window may hold millions of events; the reservoir keeps at most
`size` of them, each value of the window equally likely to be kept, in a flat
array of doubles: `8 * size` bytes. Below `size` values it holds the window
exactly and draws no random numbers at all. Once full it draws how many values
to skip before the next one it keeps (Li's Algorithm L), so most values cost a
comparison, and a window of n values draws about `2 * size * ln(n / size)`
numbers, not n.

The generator is a 64-bit linear congruential one, its top 53 bits taken (a
Mersenne Twister's state is 2.5 KB a window, this one's an integer), seeded from
the stream, field and window start, so a backtest and a replay keep the same
values and reach the same verdicts.

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


#: Knuth's MMIX generator: x -> A x + C mod 2**64.
_A = 6364136223846793005
_C = 1442695040888963407
_MASK = (1 << 64) - 1
_UNIT = 2.0**-53


class Reservoir:
    """At most `size` values, a uniform sample of everything added."""

    __slots__ = ("_next", "_seed", "_seen", "_size", "_state", "_top", "_values")

    def __init__(self, size: int, seed: int) -> None:
        self._size = size
        self._seed = seed
        self._seen = 0
        self._values = array("d")
        #: The count at which the next value is kept (0: every value, while filling).
        self._next = 0
        self._state = seed  # the generator's
        #: Algorithm L's W: the largest of the kept values' uniform keys.
        self._top = 1.0

    @property
    def seen(self) -> int:
        return self._seen

    def add(self, value: float) -> None:
        self._seen += 1
        if self._seen < self._next:  # skipped: what most values of a long window find
            return
        values = self._values
        if len(values) < self._size:
            values.append(value)
            if len(values) == self._size:
                self._values = values[:]  # full: no room kept for growth (1/16 of it)
                self._top = self._uniform() ** (1.0 / self._size)
                self._skip()
            return
        # In place of a uniform victim; the keys of the kept values shrink, by a power
        # of the draw's fraction left (itself uniform: one draw less a value kept).
        at = self._uniform() * self._size
        slot = int(at)
        values[slot] = value
        self._top *= max(at - slot, _UNIT) ** (1.0 / self._size)
        self._skip()

    def _skip(self) -> None:
        """Draw the count of the next value kept: each is kept with probability `_top`."""
        top = self._top
        skipped = math.floor(math.log(self._uniform()) / math.log1p(-top)) if top < 1.0 else 0
        self._next = self._seen + skipped + 1

    def _uniform(self) -> float:
        """A uniform double in (0, 1), from the state's top bits (the low ones of a
        power-of-two LCG are not random)."""
        state = self._state = (self._state * _A + _C) & _MASK
        return ((state >> 11) + 0.5) * _UNIT

    def state(self) -> tuple[int, int, list[float]]:
        """seed, seen, values. The generator's state is not kept: a restored full
        reservoir draws from a generator seeded again from (seed, seen)."""
        return self._seed, self._seen, self._values.tolist()

    @classmethod
    def from_state(cls, size: int, seed: int, seen: int, values: list[float]) -> Reservoir:
        reservoir = cls(size, seed)
        reservoir._seen = seen
        reservoir._values = array("d", values[:size])
        if len(reservoir._values) == size:
            # The largest key of `size` kept out of `seen` uniform keys is Beta(size,
            # seen - size + 1): drawn afresh, the sample stays uniform from here on.
            again = zlib.crc32(f"{seed}\x00{seen}".encode())
            top = random.Random(again).betavariate(size, max(seen - size, 0) + 1)
            reservoir._state, reservoir._top = again, top
            reservoir._skip()
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
