"""The rules baseline: each check against tables of points, and the z-score against
seeded Gaussian streams."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anomalyd.config import AboveRule, BelowRule, RateOfChangeRule, ValueRule, ZScoreRule
from anomalyd.detect import Check, value_check
from anomalyd.detect.rules import AboveCheck, BelowCheck, RateOfChangeCheck, ZScoreCheck

Point = tuple[float, float, bool]  # value, ts, active


def words(check: Check | None) -> tuple[bool, float, str, str]:
    assert check is not None
    return check.violated, check.value, check.expected, check.reason


def verdicts(rule: ValueRule, points: Sequence[Point]) -> list[bool | None]:
    check = value_check(rule)
    results = [check.check(value, ts, active) for value, ts, active in points]
    return [None if r is None else r.violated for r in results]


def above(threshold: float, clear: float | None = None) -> AboveRule:
    return AboveRule(name="x", type="above", threshold=threshold, clear_threshold=clear)


def below(threshold: float, clear: float | None = None) -> BelowRule:
    return BelowRule(name="x", type="below", threshold=threshold, clear_threshold=clear)


def rate(max_rate: float, direction: str = "both") -> RateOfChangeRule:
    return RateOfChangeRule(name="x", type="rate_of_change", max_rate=max_rate, direction=direction)


def zscore(**kw: object) -> ZScoreRule:
    return ZScoreRule.model_validate({"name": "x", "type": "zscore", **kw})


# --- the factory --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "kind"),
    [
        (above(1), AboveCheck),
        (below(1), BelowCheck),
        (rate(1), RateOfChangeCheck),
        (zscore(), ZScoreCheck),
    ],
)
def test_value_check_builds_the_check_for_the_rule(rule: ValueRule, kind: type) -> None:
    assert isinstance(value_check(rule), kind)


def test_each_series_gets_fresh_memory() -> None:
    rule = rate(1)
    first, second = value_check(rule), value_check(rule)
    first.check(0.0, 0.0, False)
    assert second.check(100.0, 1.0, False) is None  # the second never saw the first's point


# --- above / below with hysteresis --------------------------------------------------------------

THRESHOLD_CASES = [
    # rule, [(value, ts, active)], expected verdicts
    (above(5), [(4.0, 0, False), (5.0, 1, False), (5.1, 2, False)], [False, False, True]),
    (above(5), [(6.0, 0, True), (5.0, 1, True)], [True, False]),
    (above(-1), [(-0.5, 0, False), (-1.5, 1, False)], [True, False]),
    # the clear threshold is used only while the alert is active
    (above(10, clear=8), [(9.0, 0, False), (9.0, 1, True)], [False, True]),
    (above(10, clear=8), [(8.0, 0, True), (7.9, 1, True)], [False, False]),
    (above(10, clear=8), [(8.1, 0, True), (10.5, 1, False)], [True, True]),
    (above(10, clear=10), [(10.0, 0, True), (10.1, 1, True)], [False, True]),
    (below(5), [(6.0, 0, False), (5.0, 1, False), (4.9, 2, False)], [False, False, True]),
    (below(5), [(4.0, 0, True), (5.0, 1, True)], [True, False]),
    (below(2, clear=4), [(3.0, 0, False), (3.0, 1, True)], [False, True]),
    (below(2, clear=4), [(4.0, 0, True), (4.1, 1, True)], [False, False]),
    (below(2, clear=4), [(1.9, 0, False), (3.9, 1, True)], [True, True]),
]


@pytest.mark.parametrize(("rule", "points", "expected"), THRESHOLD_CASES)
def test_thresholds(rule: ValueRule, points: list[Point], expected: list[bool]) -> None:
    assert verdicts(rule, points) == expected


def test_above_check_explains_itself() -> None:
    check = value_check(above(10, clear=8)).check(12.5, 0.0, False)
    assert words(check) == (True, 12.5, "<= 10", "12.5 is above 10")
    active = value_check(above(10, clear=8)).check(9.0, 0.0, True)
    assert words(active) == (True, 9.0, "<= 8", "9 is above 8")


def test_below_check_explains_itself() -> None:
    check = value_check(below(2, clear=4)).check(1.0, 0.0, False)
    assert words(check) == (True, 1.0, ">= 2", "1 is below 2")


@given(
    st.floats(-1e6, 1e6),
    st.floats(0, 1e3),
    st.floats(-1e7, 1e7),
    st.booleans(),
)
def test_above_hysteresis_property(
    threshold: float, gap: float, value: float, active: bool
) -> None:
    rule = above(threshold, clear=threshold - gap)
    limit = threshold - gap if active else threshold
    assert value_check(rule).check(value, 0.0, active) is not None
    assert verdicts(rule, [(value, 0.0, active)]) == [value > limit]


@given(
    st.floats(-1e6, 1e6),
    st.floats(0, 1e3),
    st.floats(-1e7, 1e7),
    st.booleans(),
)
def test_below_hysteresis_property(
    threshold: float, gap: float, value: float, active: bool
) -> None:
    rule = below(threshold, clear=threshold + gap)
    limit = threshold + gap if active else threshold
    assert verdicts(rule, [(value, 0.0, active)]) == [value < limit]


# --- rate of change -----------------------------------------------------------------------------

RATE_CASES = [
    # the first point has no rate
    (rate(1), [(0.0, 0, False)], [None]),
    (rate(1), [(0.0, 0, False), (0.5, 1, False)], [None, False]),
    (rate(1), [(0.0, 0, False), (1.0, 1, False)], [None, False]),  # at the limit is fine
    (rate(1), [(0.0, 0, False), (2.0, 1, False)], [None, True]),
    (rate(1), [(0.0, 0, False), (2.0, 4, False)], [None, False]),  # per second, not per point
    (rate(1), [(0.0, 0, False), (-2.0, 1, False)], [None, True]),
    # equal or earlier timestamps give no rate (and do not divide by zero)
    (rate(1), [(0.0, 5, False), (100.0, 5, False)], [None, None]),
    (rate(1), [(0.0, 5, False), (100.0, 4, False)], [None, None]),
    # ... but the late point becomes the previous one
    (rate(1), [(0.0, 5, False), (100.0, 4, False), (100.5, 5, False)], [None, None, False]),
    # direction
    (rate(1, "up"), [(0.0, 0, False), (2.0, 1, False), (0.0, 2, False)], [None, True, False]),
    (rate(1, "down"), [(0.0, 0, False), (2.0, 1, False), (0.0, 2, False)], [None, False, True]),
    (rate(1, "both"), [(0.0, 0, False), (2.0, 1, False), (0.0, 2, False)], [None, True, True]),
    # the rate is measured from the previous point, not from the first
    (rate(1), [(0.0, 0, False), (10.0, 1, False), (10.5, 2, False)], [None, True, False]),
]


@pytest.mark.parametrize(("rule", "points", "expected"), RATE_CASES)
def test_rate_of_change(rule: ValueRule, points: list[Point], expected: list[bool | None]) -> None:
    assert verdicts(rule, points) == expected


def test_rate_of_change_explains_itself() -> None:
    check = value_check(rate(1.5))
    check.check(0.0, 10.0, False)
    verdict = check.check(6.0, 12.0, False)
    assert words(verdict) == (True, 6.0, "rate within ±1.5/s", "changed at 3/s (limit 1.5/s)")


@given(
    st.lists(
        st.tuples(st.floats(-1e6, 1e6), st.floats(0.001, 100)),
        min_size=2,
        max_size=30,
    ),
    st.floats(0.01, 1e3),
    st.sampled_from(["up", "down", "both"]),
)
def test_rate_of_change_property(
    steps: list[tuple[float, float]], max_rate: float, direction: str
) -> None:
    check = value_check(rate(max_rate, direction))
    ts = 0.0
    previous: tuple[float, float] | None = None
    for value, dt in steps:
        ts += dt
        verdict = check.check(value, ts, False)
        if previous is None:
            assert verdict is None
        else:
            r = (value - previous[0]) / (ts - previous[1])
            expected = {"up": r > max_rate, "down": r < -max_rate, "both": abs(r) > max_rate}
            assert verdict is not None
            assert verdict.violated == expected[direction]
        previous = (value, ts)


# --- z-score ------------------------------------------------------------------------------------


def gaussian(seed: int, n: int, mean: float = 100.0, std: float = 5.0) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(mean, std) for _ in range(n)]


def feed(rule: ZScoreRule, values: Sequence[float]) -> list[Check | None]:
    check = value_check(rule)
    return [check.check(v, float(i), False) for i, v in enumerate(values)]


def test_zscore_is_silent_before_min_samples() -> None:
    results = feed(zscore(min_samples=10, threshold=3), [*gaussian(1, 10), 1e6])
    assert results[:10] == [None] * 10
    assert results[10] is not None
    assert results[10].violated


@pytest.mark.parametrize("min_samples", [2, 5, 30])
def test_zscore_judges_from_exactly_min_samples(min_samples: int) -> None:
    results = feed(zscore(min_samples=min_samples), gaussian(2, min_samples + 1))
    assert [r is None for r in results] == [True] * min_samples + [False]


def test_zscore_constant_series_cannot_judge() -> None:
    results = feed(zscore(min_samples=2), [7.0] * 50 + [8.0])
    assert results == [None] * 51


def test_zscore_constant_large_series_cannot_judge() -> None:
    # a tiny float wobble on a large constant is not a scale to measure against
    results = feed(zscore(min_samples=2), [1e12] * 50 + [1e12 + 1e-3])
    assert results == [None] * 51


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_zscore_spike_after_gaussian_stream(seed: int) -> None:
    normal = gaussian(seed, 300)
    results = feed(zscore(threshold=6, min_samples=30), [*normal, 200.0])
    assert all(r is None for r in results[:30])
    assert not any(r.violated for r in results[30:300] if r is not None)
    spike = results[300]
    assert spike is not None
    assert spike.violated
    assert spike.value == 200.0
    assert spike.reason.startswith("z-score ")


@pytest.mark.parametrize(
    ("direction", "spike", "violated"),
    [
        ("up", 200.0, True),
        ("up", 0.0, False),
        ("down", 200.0, False),
        ("down", 0.0, True),
        ("both", 200.0, True),
        ("both", 0.0, True),
        ("both", 101.0, False),
    ],
)
def test_zscore_direction(direction: str, spike: float, violated: bool) -> None:
    results = feed(zscore(threshold=6, direction=direction), [*gaussian(7, 200), spike])
    assert results[-1] is not None
    assert results[-1].violated is violated


def test_zscore_judges_against_the_moments_before_the_point() -> None:
    # alternating 0, 2: mean 1 and std 1 exactly once the window is filled
    base = [0.0, 2.0] * 200
    rule = zscore(threshold=4, window=10, min_samples=10)
    check = value_check(rule)
    for i, v in enumerate(base):
        check.check(v, float(i), False)
    # Judged against the moments before it, 5.9 is ~4.9 sigma out. Had it been learned first,
    # the variance would have grown and the z-score shrunk below 4.
    verdict = check.check(5.9, 400.0, False)
    assert verdict is not None
    assert verdict.violated
    z = float(verdict.reason.split()[1])
    assert 4.5 < z < 5.5


def test_zscore_learns_the_spike_afterwards() -> None:
    check = value_check(zscore(threshold=3, window=10, min_samples=10))
    for i, v in enumerate(gaussian(3, 100, std=1.0)):
        check.check(v, float(i), False)
    first = check.check(150.0, 100.0, False)
    assert first is not None
    assert first.violated
    # the spike moved the mean and widened the variance: the same value is less surprising
    second = check.check(150.0, 101.0, False)
    assert second is not None
    assert float(second.reason.split()[1]) < float(first.reason.split()[1])


def test_zscore_ignores_active() -> None:
    values = [*gaussian(5, 100), 200.0]
    inactive = feed(zscore(threshold=6), values)
    check = value_check(zscore(threshold=6))
    active = [check.check(v, float(i), True) for i, v in enumerate(values)]
    assert inactive == active


def test_zscore_expected_range_is_mean_plus_minus_threshold_std() -> None:
    results = feed(zscore(threshold=2, window=10, min_samples=10), [0.0, 2.0] * 200 + [1.0])
    last = results[-1]
    assert last is not None
    # After 0, 2, 0, 2 ... ending on 2 with alpha = 2/11, the EW mean settles at 1.1 and the
    # EW variance at 0.99 (the mean leans toward the latest point).
    mean, std = 1.1, 0.99**0.5
    low, high = (float(x) for x in last.expected.split(" .. "))
    assert low == pytest.approx(mean - 2 * std, abs=1e-5)
    assert high == pytest.approx(mean + 2 * std, abs=1e-5)
    assert not last.violated


def test_zscore_survives_an_overflowing_value() -> None:
    # One value of 1e308 made the EW variance infinite and the rule blind for good.
    rule = zscore(threshold=6, min_samples=30)
    results = feed(rule, [*gaussian(3, 2), 1e308, *gaussian(4, 200), 200.0])
    last = results[-1]
    assert last is not None
    assert last.violated
    again = feed(rule, [*gaussian(5, 100), 1e308, -1e308, *gaussian(6, 100), 200.0])
    assert again[-1] is not None
    assert again[-1].violated
