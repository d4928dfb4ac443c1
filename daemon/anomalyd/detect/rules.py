"""The rules baseline: deterministic, explainable checks of one series' values.

One small object per (rule, stream, field) holds whatever that rule needs to
remember (the previous point, running moments). Each check answers for the
current point, given whether the alert is active so thresholds can apply
hysteresis. Absence is not here: it is a question about time, not about a value
(see `anomalyd.decide.engine`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from anomalyd.config import AboveRule, BelowRule, RateOfChangeRule, ValueRule, ZScoreRule
from anomalyd.plain import (
    Plain,
    StateError,
    number,
    read_bool,
    read_finite,
    read_float,
    read_int,
    read_list,
    read_object,
    required,
)


# Not frozen: a frozen dataclass costs five times as much to build, and one is built
# per event on the hot path. Treat it as immutable all the same.
@dataclass(slots=True)
class Check:
    """One rule's opinion of one point. Its words are only formatted when asked for (an
    alert fires): every point is checked, few fire, and formatting costs more than the
    check itself."""

    violated: bool
    value: float
    describe: Callable[[], tuple[str, str]] = field(compare=False, repr=False)

    @property
    def expected(self) -> str:
        """The normal range, for the alert's annotations."""
        return self.describe()[0]

    @property
    def reason(self) -> str:
        """What was seen, for humans."""
        return self.describe()[1]


class ValueCheck(Protocol):
    def check(self, value: float, ts: float, active: bool) -> Check | None:
        """The verdict on this point, or None while the rule cannot judge yet."""

    def state(self) -> Plain:
        """What it remembers, as plain values (`anomalyd.plain`); the rest is the rule's."""

    def load_state(self, state: Plain, where: str) -> None:
        """Resume from `state()`; raises StateError if it does not fit this check."""


class AboveCheck:
    __slots__ = ("_clear", "_threshold")

    def __init__(self, rule: AboveRule) -> None:
        self._threshold = rule.threshold
        self._clear = rule.threshold if rule.clear_threshold is None else rule.clear_threshold

    def check(self, value: float, ts: float, active: bool) -> Check:
        limit = self._clear if active else self._threshold
        return Check(
            value > limit,
            value,
            lambda: (f"<= {_fmt(limit)}", f"{_fmt(value)} is above {_fmt(limit)}"),
        )

    def state(self) -> Plain:
        return None

    def load_state(self, state: Plain, where: str) -> None:
        if state is not None:
            raise StateError(f"{where}: null (a threshold remembers nothing)")


class BelowCheck:
    __slots__ = ("_clear", "_threshold")

    def __init__(self, rule: BelowRule) -> None:
        self._threshold = rule.threshold
        self._clear = rule.threshold if rule.clear_threshold is None else rule.clear_threshold

    def check(self, value: float, ts: float, active: bool) -> Check:
        limit = self._clear if active else self._threshold
        return Check(
            value < limit,
            value,
            lambda: (f">= {_fmt(limit)}", f"{_fmt(value)} is below {_fmt(limit)}"),
        )

    def state(self) -> Plain:
        return None

    def load_state(self, state: Plain, where: str) -> None:
        if state is not None:
            raise StateError(f"{where}: null (a threshold remembers nothing)")


class RateOfChangeCheck:
    """|Δvalue / Δt| against a maximum rate in units per second."""

    __slots__ = ("_direction", "_max_rate", "_previous")

    def __init__(self, rule: RateOfChangeRule) -> None:
        self._max_rate = rule.max_rate
        self._direction = rule.direction
        self._previous: tuple[float, float] | None = None

    def check(self, value: float, ts: float, active: bool) -> Check | None:
        previous, self._previous = self._previous, (value, ts)
        if previous is None or ts <= previous[1]:
            return None  # no rate without an earlier point in time
        rate = (value - previous[0]) / (ts - previous[1])
        violated = _beyond(rate, self._max_rate, self._direction)
        limit = self._max_rate
        return Check(
            violated,
            value,
            lambda: (
                f"rate within ±{_fmt(limit)}/s",
                f"changed at {_fmt(rate)}/s (limit {_fmt(limit)}/s)",
            ),
        )

    def state(self) -> Plain:
        """The previous point, [value, ts], or None."""
        return None if self._previous is None else [number(x) for x in self._previous]

    def load_state(self, state: Plain, where: str) -> None:
        if state is None:
            self._previous = None
            return
        value, ts = read_list(state, where, 2)
        self._previous = (read_float(value, f"{where}[0]"), read_finite(ts, f"{where}[1]"))


class ZScoreCheck:
    """Distance from exponentially weighted mean and variance, in standard deviations.

    The point is judged against the moments *before* it is learned, so a spike
    cannot hide itself by inflating the variance it is measured with.
    """

    __slots__ = ("_direction", "_min_samples", "_moments", "_seen", "_threshold")

    def __init__(self, rule: ZScoreRule) -> None:
        alpha = 2.0 / (rule.window + 1.0)  # the usual EMA span-to-alpha mapping
        self._moments = EWMoments(alpha)
        self._threshold = rule.threshold
        self._min_samples = rule.min_samples
        self._direction = rule.direction
        self._seen = 0

    def check(self, value: float, ts: float, active: bool) -> Check | None:
        verdict = self._judge(value) if self._seen >= self._min_samples else None
        learned = self._bounded(value)
        if learned is not None:
            self._moments.update(learned)
        self._seen += 1
        return verdict

    def state(self) -> Plain:
        """The points seen and the moments learned."""
        return {"seen": self._seen, "moments": self._moments.state()}

    def load_state(self, state: Plain, where: str) -> None:
        data = read_object(state, where)
        self._seen = read_int(required(data, "seen", where), f"{where}.seen")
        self._moments.load_state(required(data, "moments", where), f"{where}.moments")

    def _bounded(self, value: float) -> float | None:
        """What the moments learn of `value`: once the rule judges, a point beyond the
        threshold as if it sat at the threshold (one spike cannot inflate the scale that
        later points are measured with); before, nothing whose squared distance would
        overflow (one value of 1e308 made the variance infinite and the rule blind)."""
        mean, std = self._moments.mean, math.sqrt(max(self._moments.get(), 0.0))
        if self._seen >= self._min_samples and std > 0.0:
            limit = self._threshold * std
            return min(max(value, mean - limit), mean + limit)
        return value if abs(value - mean) < _SQUARE_SAFE else None

    def _judge(self, value: float) -> Check | None:
        mean, std = self._moments.mean, math.sqrt(max(self._moments.get(), 0.0))
        if std <= 1e-12 * max(1.0, abs(mean)):
            return None  # a constant series has no scale to measure against
        z = (value - mean) / std
        limit = self._threshold
        low, high = mean - limit * std, mean + limit * std
        return Check(
            _beyond(z, limit, self._direction),
            value,
            lambda: (f"{_fmt(low)} .. {_fmt(high)}", f"z-score {z:.2f} (limit {_fmt(limit)})"),
        )


class EWMoments:
    """Exponentially weighted mean and variance: River's `stats.EWMean` and `stats.EWVar`
    to the bit (the same operations in the same order; a unit test compares them), in
    plain Python so that what it learned is a few plain fields (River keeps them in
    Rust, where only a pickle reaches them). `get` is the variance, `mean` the mean."""

    __slots__ = ("_alpha", "_initialized", "_keep", "_mean", "_square")

    def __init__(self, alpha: float) -> None:
        self._alpha = alpha
        self._keep = 1.0 - alpha
        self._initialized = False
        self._mean = 0.0
        self._square = 0.0  # the weighted mean of the squares

    def update(self, x: float) -> None:
        if not self._initialized:
            self._mean, self._square, self._initialized = x, x * x, True
            return
        self._mean = self._alpha * x + self._keep * self._mean
        self._square = self._alpha * (x * x) + self._keep * self._square

    @property
    def mean(self) -> float:
        return self._mean

    def get(self) -> float:
        return self._square - self._mean * self._mean

    def state(self) -> list[Plain]:
        return [self._initialized, number(self._mean), number(self._square)]

    def load_state(self, state: Plain, where: str) -> None:
        initialized, mean, square = read_list(state, where, 3)
        self._initialized = read_bool(initialized, f"{where}[0]")
        self._mean = read_float(mean, f"{where}[1]")
        self._square = read_float(square, f"{where}[2]")


#: Distances whose square still fits a float with room for a weighted sum.
_SQUARE_SAFE = 1e150


def _beyond(x: float, limit: float, direction: str) -> bool:
    if direction == "up":
        return x > limit
    if direction == "down":
        return x < -limit
    return abs(x) > limit


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def value_check(rule: ValueRule) -> ValueCheck:
    """A fresh check with empty memory for one series."""
    match rule:
        case AboveRule():
            return AboveCheck(rule)
        case BelowRule():
            return BelowCheck(rule)
        case RateOfChangeRule():
            return RateOfChangeCheck(rule)
        case ZScoreRule():
            return ZScoreCheck(rule)
