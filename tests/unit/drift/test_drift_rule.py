"""The decision rule on constructed samples: material *and* clear of noise."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from anomalyd.config.drift import DriftThresholds
from anomalyd.drift import Side, Stats, compare, rule

THRESHOLDS = DriftThresholds()


def side(values: np.ndarray | list[float]) -> Side:
    """Stats and sample of the same values (a window no larger than K)."""
    array = np.sort(np.asarray(values, dtype=np.float64))
    p50, p95, p99 = np.quantile(array, (0.5, 0.95, 0.99))
    stats = Stats(
        count=array.size,
        mean=float(array.mean()),
        std=float(array.std(ddof=1)) if array.size > 1 else 0.0,
        min=float(array[0]),
        max=float(array[-1]),
        p50=float(p50),
        p95=float(p95),
        p99=float(p99),
    )
    return Side(stats, array)


def normal(seed: int, n: int, mean: float = 0.0, std: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, std, n)


def kinds(current: np.ndarray | list[float], reference: np.ndarray | list[float]) -> set[str]:
    c = compare(side(current), side(reference), THRESHOLDS, bins=10)
    return {name for name in ("location", "spread", "shape") if getattr(c, name)}


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (normal(1, 500), set()),
        (normal(1, 500, mean=1.0), {"location", "shape"}),
        (normal(2, 500, std=math.sqrt(2)), {"spread"}),
        (normal(1, 500, std=0.6), {"spread", "shape"}),
        # Same mean and variance, two modes.
        (np.random.default_rng(1).choice((-0.95, 0.95), 500) + normal(2, 500, std=0.31), {"shape"}),
    ],
    ids=["same", "mean+1", "variance x2", "narrower", "bimodal"],
)
def test_what_kind_of_difference(current: np.ndarray, expected: set[str]) -> None:
    assert kinds(current, normal(0, 2000)) == expected


def test_a_material_difference_in_a_tiny_window_is_noise() -> None:
    # 0.6 std apart is above mean_shift, but 8 events cannot tell it from chance.
    assert kinds(normal(1, 8, mean=0.6), normal(0, 8)) == set()


def test_a_certain_but_trivial_difference_is_not_drift() -> None:
    c = compare(side(normal(1, 60_000, mean=0.05)), side(normal(0, 60_000)), THRESHOLDS, 10)
    assert not c.shifted
    assert c.ks_pvalue < 1e-6


def test_heavy_tails_alone_are_not_drift() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        assert kinds(rng.standard_t(3, 500), rng.standard_t(3, 2000)) == set()


def test_variance_x2_in_a_small_window_is_clearer_from_the_standard_deviations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A 2-hour window at one event a minute against a day of reference, at the pooled
    # significance (1e-5): on a normal tail the standard deviations tell variance x2
    # from noise in 28 of 40 seeds, the trimmed deviations alone in 15.
    strict = THRESHOLDS.model_copy(update={"significance": 1e-5})
    pairs = [
        (side(normal(seed, 120, std=math.sqrt(2))), side(normal(seed + 100, 1032)))
        for seed in range(40)
    ]
    both = sum(compare(c, r, strict, 10).spread for c, r in pairs)
    monkeypatch.setattr(rule, "MAX_KURTOSIS", 0.0)  # the trimmed deviations alone
    trimmed = sum(compare(c, r, strict, 10).spread for c, r in pairs)
    assert (both, trimmed) == (28, 15)


@pytest.mark.parametrize("freedom", [(71, 863), (143, 863), (119, 1439), (29, 29), (1199, 13000)])
@pytest.mark.parametrize("level", [5e-6, 0.01, 0.5, 0.99, 1 - 5e-6])
def test_a_variance_ratios_z_is_its_place_in_the_f_distribution(
    freedom: tuple[int, int], level: float
) -> None:
    # Both tails: |ln F| over its delta-method error put a 6-hour window of 72 events
    # against 864 at z 5.0 at F's lower 5e-6 quantile and 4.0 at its upper one.
    f = scipy_stats.f.ppf(level, *freedom)
    assert rule._f_z(f, *freedom) == pytest.approx(NormalDist().inv_cdf(level), abs=0.05)


def test_the_standard_deviations_z_uses_the_f_distribution_on_a_normal_tail() -> None:
    # Two samples with a normal's shape (kurtosis about 3), their variances at F's
    # 5e-6 quantiles for 72 events against 864: z at the 1e-5 two-sided level each way.
    shape = np.array([NormalDist().inv_cdf((i + 0.5) / 864) for i in range(864)])
    reference = side(shape / shape.std(ddof=1))
    small = np.array([NormalDist().inv_cdf((i + 0.5) / 72) for i in range(72)])
    for level in (5e-6, 1 - 5e-6):
        ratio = math.sqrt(scipy_stats.f.ppf(level, 71, 863))
        current = side(small / small.std(ddof=1) * ratio)
        assert max(rule._kurtosis(current.sample), rule._kurtosis(reference.sample)) < 3.0
        # So a normal's kurtosis, and degrees of freedom 2(n - 1) / (3 - 1) = n - 1.
        assert rule._std_change(current, reference)[1] == pytest.approx(4.417, abs=0.05)


def test_heavy_tails_leave_the_spread_to_the_trimmed_deviations() -> None:
    rng = np.random.default_rng(9)
    for _ in range(20):
        current, reference = side(rng.standard_t(3, 240)), side(rng.standard_t(3, 1032))
        assert rule._std_change(current, reference)[1] == 0.0  # kurtosis past 4
    # A burst of noise (8% of a window at 3x the spread) makes a heavy tail too.
    burst = np.concatenate([normal(1, 110), normal(2, 10, std=3.0)])
    assert rule._std_change(side(burst), side(normal(3, 1032)))[1] == 0.0


def test_constant_streams() -> None:
    assert kinds([5.0] * 200, [5.0] * 200) == set()
    assert "location" in kinds([6.0] * 200, [5.0] * 200)  # any change of a constant is material
    c = compare(side([6.0] * 200), side([5.0] * 200), THRESHOLDS, 10)
    assert math.isfinite(c.mean_shift)
    assert math.isfinite(c.wasserstein)


def test_wasserstein_reads_in_reference_standard_deviations() -> None:
    reference = normal(0, 5000, mean=100.0, std=20.0)
    c = compare(side(reference + 30.0), side(reference), THRESHOLDS, 10)  # 1.5 std
    assert c.wasserstein == pytest.approx(1.5, rel=0.01)
    assert c.mean_shift == pytest.approx(1.5, rel=0.01)


@given(st.floats(1e-3, 1e6), st.floats(-1e6, 1e6))
def test_the_verdict_does_not_depend_on_units(scale: float, shift: float) -> None:
    current, reference = normal(3, 400, mean=0.7), normal(4, 400)
    plain = compare(side(current), side(reference), THRESHOLDS, 10)
    moved = compare(side(current * scale + shift), side(reference * scale + shift), THRESHOLDS, 10)
    assert (moved.location, moved.spread, moved.shape) == (
        plain.location,
        plain.spread,
        plain.shape,
    )
    assert moved.mean_shift == pytest.approx(plain.mean_shift, rel=1e-6)
    assert moved.ks == pytest.approx(plain.ks)


def leaning(current: np.ndarray, pool: np.ndarray, reference: np.ndarray) -> bool:
    pooled = compare(side(pool), side(reference), THRESHOLDS, bins=10)
    assert pooled.shifted
    return rule.leans(side(current), side(reference), pooled, THRESHOLDS, bins=10)


def scaled(values: np.ndarray, ratio: float) -> np.ndarray:
    """`values` with their standard deviation exactly `ratio` times the reference's 1."""
    return (values - values.mean()) / values.std(ddof=1) * ratio


def test_a_later_window_leans_with_half_the_material_effect_on_its_own() -> None:
    reference, pool = scaled(normal(0, 2000), 1.0), normal(1, 500, std=math.sqrt(2))
    half = math.sqrt(THRESHOLDS.scale_ratio)  # ln ratio: half of the material ln 1.25
    assert leaning(scaled(normal(2, 2000), half * 1.02), pool, reference)
    assert not leaning(scaled(normal(2, 2000), half * 0.98), pool, reference)


def test_a_later_window_leans_only_the_pools_way_and_clear_of_noise() -> None:
    reference, pool = scaled(normal(0, 2000), 1.0), normal(1, 500, std=math.sqrt(2))
    assert not leaning(scaled(normal(2, 2000), 1 / 1.3), pool, reference)  # narrower
    assert not leaning(scaled(normal(2, 20), 1.2), pool, reference)  # 20 events: noise
    shifted = normal(3, 500, mean=1.0)
    assert leaning(normal(4, 500, mean=0.2), shifted, reference)  # 0.2 >= 0.3 / 2
    assert not leaning(normal(4, 500, mean=0.1), shifted, reference)


@pytest.mark.parametrize(
    ("z", "freedom"), [(1.96, 10), (1.96, 30), (2.326, 50), (4.417, 23), (4.417, 57)]
)
def test_students_t_quantile_matches_scipys(z: float, freedom: float) -> None:
    level = NormalDist().cdf(z)
    assert rule._t_quantile(z, freedom) == pytest.approx(
        scipy_stats.t.ppf(level, freedom), abs=2e-3
    )
