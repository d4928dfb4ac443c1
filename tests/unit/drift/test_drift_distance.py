"""PSI, KS, Wasserstein and the bins' chi-square against scipy on the same samples, and
their properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from anomalyd.drift import ks_pvalue, ks_statistic, psi, psi_edges, wasserstein
from anomalyd.drift.distance import PSI_EPSILON, chi_square_pvalue, chi_square_survival
from anomalyd.drift.sample import Reservoir, thin, thinned_size, window_seed

PAIRS = [
    ("same law", lambda r: r.normal(0, 1, 400), lambda r: r.normal(0, 1, 700)),
    ("mean shift", lambda r: r.normal(0, 1, 500), lambda r: r.normal(1, 1, 500)),
    ("scale", lambda r: r.normal(0, 1, 300), lambda r: r.normal(0, 3, 900)),
    ("skewed", lambda r: r.exponential(1, 512), lambda r: r.normal(1, 1, 512)),
    ("ties", lambda r: r.integers(0, 5, 600).astype(float), lambda r: r.integers(1, 6, 200) * 1.0),
    ("tiny", lambda r: np.array([1.0]), lambda r: np.array([2.0, 3.0])),
]


@pytest.mark.parametrize(("name", "make_a", "make_b"), PAIRS, ids=[p[0] for p in PAIRS])
def test_ks_and_wasserstein_match_scipy(name: str, make_a, make_b) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(abs(hash(name)) % 1000)
    a, b = np.sort(make_a(rng)), np.sort(make_b(rng))
    assert ks_statistic(a, b) == pytest.approx(scipy_stats.ks_2samp(a, b).statistic, abs=1e-12)
    assert wasserstein(a, b) == pytest.approx(scipy_stats.wasserstein_distance(a, b), rel=1e-9)


@pytest.mark.parametrize(
    ("n", "m", "statistic"), [(500, 2000, 0.05), (500, 500, 0.1), (100, 400, 0.2)]
)
def test_ks_pvalue_is_close_to_scipys_asymptotic_one(n: int, m: int, statistic: float) -> None:
    # Stephens' correction moves it a little from scipy's plain asymptotic value.
    en = np.sqrt(n * m / (n + m))
    expected = scipy_stats.kstwobign.sf(statistic * en)
    assert ks_pvalue(statistic, n, m) == pytest.approx(expected, rel=0.25, abs=1e-4)
    assert ks_pvalue(0.0, n, m) == 1.0


@pytest.mark.parametrize("df", [1, 2, 8, 9, 10, 19])
@pytest.mark.parametrize("x", [0.5, 5.0, 20.0, 60.0, 150.0])
def test_chi_square_survival_matches_scipy_far_into_the_tail(df: int, x: float) -> None:
    assert chi_square_survival(x, df) == pytest.approx(scipy_stats.chi2.sf(x, df), rel=1e-9)
    assert chi_square_survival(0.0, df) == 1.0


@pytest.mark.parametrize(("name", "make_a", "make_b"), PAIRS[:5], ids=[p[0] for p in PAIRS[:5]])
def test_chi_square_pvalue_is_scipys_test_of_the_binned_counts(name: str, make_a, make_b) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(abs(hash(name)) % 1000)
    a, b = np.sort(make_a(rng)), np.sort(make_b(rng))
    edges = psi_edges(b, 10)
    bins = [np.searchsorted(edges, x, side="right") for x in (a, b)]
    table = np.array([np.bincount(x, minlength=edges.size + 1) for x in bins])
    table = table[:, table.sum(axis=0) > 0]
    expected = scipy_stats.chi2_contingency(table, correction=False).pvalue
    assert chi_square_pvalue(a, b, edges) == pytest.approx(expected, rel=1e-6, abs=1e-300)


def test_the_bins_chi_square_sees_skew_in_small_windows_where_ks_does_not() -> None:
    # Two 2-hour windows at one event a minute (240 events), standardised exponential
    # against normal noise: the same mean and variance, another shape. At 1e-5, the
    # chi-square clears all 20 seeds, KS 4.
    chi = ks = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        window = np.sort(rng.exponential(1.0, 240) - 1.0)
        reference = np.sort(rng.normal(0.0, 1.0, 1032))
        ks += ks_pvalue(ks_statistic(window, reference), window.size, reference.size) <= 1e-5
        chi += chi_square_pvalue(window, reference, psi_edges(reference, 10)) <= 1e-5
    assert (chi, ks) == (20, 4)


def reference_psi(current: np.ndarray, reference: np.ndarray, bins: int) -> float:
    """PSI written out the textbook way: numpy.histogram over the reference's quantile bins."""
    inner = np.unique(np.quantile(reference, np.arange(1, bins) / bins))
    edges = np.concatenate([[-np.inf], inner, [np.inf]])
    # numpy's bins are [a, b) like ours (searchsorted side="right"), the last one closed.
    p = np.histogram(current, edges)[0] / current.size
    q = np.histogram(reference, edges)[0] / reference.size
    p, q = np.maximum(p, PSI_EPSILON), np.maximum(q, PSI_EPSILON)
    return float(np.sum((p - q) * np.log(p / q)))


@pytest.mark.parametrize(("name", "make_a", "make_b"), PAIRS[:4], ids=[p[0] for p in PAIRS[:4]])
def test_psi_matches_a_histogram_implementation(name: str, make_a, make_b) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(7)
    a, b = np.sort(make_a(rng)), np.sort(make_b(rng))
    assert psi(a, b, psi_edges(b, 10)) == pytest.approx(reference_psi(a, b, 10), rel=1e-9)


def test_psi_of_known_proportions() -> None:
    reference = np.sort(np.repeat([0.0, 1.0], 50))  # edges at 0 and 1 -> bins (<0), [0,1), [1,..)
    current = np.sort(np.repeat([0.0, 1.0], [80, 20]))
    edges = psi_edges(reference, 2)
    expected = (0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5)
    assert psi(current, reference, edges) == pytest.approx(expected)


def test_an_empty_bin_costs_epsilon_not_infinity() -> None:
    reference = np.sort(np.random.default_rng(1).normal(0, 1, 1000))
    current = np.full(100, 50.0)  # every value in the top bin
    value = psi(current, reference, psi_edges(reference, 10))
    assert np.isfinite(value)
    assert value > 5


samples = st.lists(
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), min_size=1, max_size=200
).map(lambda xs: np.sort(np.array(xs, dtype=np.float64)))


@given(samples, samples, st.integers(2, 20))
def test_distances_are_in_range(a: np.ndarray, b: np.ndarray, bins: int) -> None:
    assert psi(a, b, psi_edges(b, bins)) >= 0.0
    assert 0.0 <= ks_statistic(a, b) <= 1.0
    assert wasserstein(a, b) >= 0.0
    assert 0.0 <= ks_pvalue(ks_statistic(a, b), a.size, b.size) <= 1.0


@given(samples, st.integers(2, 20))
def test_a_sample_against_itself_is_zero(a: np.ndarray, bins: int) -> None:
    assert psi(a, a, psi_edges(a, bins)) == 0.0
    assert ks_statistic(a, a) == 0.0
    assert wasserstein(a, a) == 0.0


@given(samples, samples)
def test_ks_and_wasserstein_are_symmetric(a: np.ndarray, b: np.ndarray) -> None:
    assert ks_statistic(a, b) == pytest.approx(ks_statistic(b, a))
    assert wasserstein(a, b) == pytest.approx(wasserstein(b, a), rel=1e-9, abs=1e-9)


@given(samples, st.floats(-1e3, 1e3, allow_nan=False))
def test_wasserstein_of_a_translation_is_the_offset(a: np.ndarray, offset: float) -> None:
    assert wasserstein(a + offset, a) == pytest.approx(abs(offset), rel=1e-6, abs=1e-6)


# --- the reservoir ------------------------------------------------------------------------------


def test_the_reservoir_holds_everything_below_its_size() -> None:
    reservoir = Reservoir(8, seed=1)
    for value in (3.0, 1.0, 2.0):
        reservoir.add(value)
    assert reservoir.sorted().tolist() == [1.0, 2.0, 3.0]
    assert Reservoir(8, seed=1).sorted().size == 0


def test_the_reservoir_is_bounded_uniform_and_seeded() -> None:
    def fill(seed: int) -> np.ndarray:
        reservoir = Reservoir(500, seed)
        for value in range(100_000):
            reservoir.add(float(value))
        return reservoir.sorted()

    kept = fill(3)
    assert kept.size == 500
    assert np.unique(kept).size == 500
    assert np.array_equal(kept, fill(3))
    assert not np.array_equal(kept, fill(4))
    # Every value was equally likely to be kept: the sample looks uniform over 0..99999,
    # early and late values alike.
    for seed in range(5):
        assert scipy_stats.kstest(fill(seed) / 100_000, "uniform").pvalue > 0.001


def test_window_seeds_are_stable_and_distinct() -> None:
    assert window_seed(0, "s", "value", 60.0) == window_seed(0, "s", "value", 60.0)
    seeds = {window_seed(0, "s", f, t) for f in ("a", "b") for t in (0.0, 60.0)}
    assert len(seeds) == 4


# --- thinning a window that joins a rolling reference -------------------------------------------

#: Few distinct values: many ties.
grids = st.lists(st.integers(-20, 20).map(float), min_size=1, max_size=2000).map(
    lambda xs: np.sort(np.array(xs, dtype=np.float64))
)


@given(st.one_of(samples, grids), st.integers(2, 600))
def test_thinning_keeps_the_quantile_function_within_one_step(a: np.ndarray, size: int) -> None:
    kept = thin(a, size)
    assert kept.size == min(a.size, size)
    assert np.all(np.diff(kept) >= 0)
    assert kept[0] == a[0]
    assert kept[-1] == a[-1]
    assert np.isin(kept, a).all()
    assert ks_statistic(a, kept) <= 1.0 / kept.size + 1e-12


def test_thinning_takes_evenly_spaced_order_statistics_deterministically() -> None:
    a = np.arange(10.0)
    assert thin(a, 4).tolist() == [0.0, 3.0, 6.0, 9.0]
    assert thin(a, 10) is a
    b = np.sort(np.random.default_rng(5).normal(0, 1, 512))
    assert np.array_equal(thin(b, 128), thin(b.copy(), 128))


@pytest.mark.parametrize(
    ("k", "n", "each"), [(512, 1, 512), (512, 4, 128), (512, 3, 171), (32, 64, 2)]
)
def test_a_pool_of_n_thinned_windows_holds_about_k_values(k: int, n: int, each: int) -> None:
    assert thinned_size(k, n) == each
