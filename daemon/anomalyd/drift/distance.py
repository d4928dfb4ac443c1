"""Distances between two samples: PSI, Kolmogorov-Smirnov and Wasserstein-1, and a
chi-square test of the PSI's bins.

Pure functions over *sorted* float64 arrays (what `Reservoir.sorted` returns),
O((n + m) log(n + m)). They agree with scipy.stats.ks_2samp's statistic and
scipy.stats.wasserstein_distance (tested), without needing scipy here.
"""

from __future__ import annotations

import math

import numpy as np

from anomalyd.drift.sample import FloatArray

#: A bin the reference or the window leaves empty counts as this proportion, so
#: PSI stays finite (ln 0); 1e-4 is the usual choice in credit-risk practice.
PSI_EPSILON = 1e-4


def ks_statistic(a: FloatArray, b: FloatArray) -> float:
    """sup |F_a - F_b| over the pooled values: 0 for identical samples, at most 1."""
    points = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, points, side="right") / a.size
    cdf_b = np.searchsorted(b, points, side="right") / b.size
    return float(np.max(np.abs(cdf_a - cdf_b)))


def ks_pvalue(statistic: float, n: int, m: int) -> float:
    """Asymptotic two-sided p-value of a KS statistic (Kolmogorov's distribution with
    Stephens' small-sample correction). Used only as a noise guard, never alone."""
    en = math.sqrt(n * m / (n + m))
    lam = (en + 0.12 + 0.11 / en) * statistic
    if lam < 0.2:
        return 1.0
    total = sum(
        (1.0 if k % 2 else -1.0) * math.exp(-2.0 * k * k * lam * lam) for k in range(1, 101)
    )
    return min(1.0, max(0.0, 2.0 * total))


def wasserstein(a: FloatArray, b: FloatArray) -> float:
    """Wasserstein-1 (earth mover's) distance: the area between the two CDFs."""
    points = np.concatenate([a, b])
    points.sort(kind="mergesort")
    deltas = np.diff(points)
    cdf_a = np.searchsorted(a, points[:-1], side="right") / a.size
    cdf_b = np.searchsorted(b, points[:-1], side="right") / b.size
    return float(np.sum(np.abs(cdf_a - cdf_b) * deltas))


def psi_edges(reference: FloatArray, bins: int) -> FloatArray:
    """Inner bin edges at the reference's quantiles, so each bin holds ~1/bins of it.

    Repeated values (a discrete stream) merge edges, leaving fewer, wider bins.
    """
    inner = np.quantile(reference, np.arange(1, bins) / bins)
    return np.unique(inner)


def psi(current: FloatArray, reference: FloatArray, edges: FloatArray) -> float:
    """Population stability index: sum over bins of (p - q) * ln(p / q) >= 0."""
    p = _proportions(current, edges)
    q = _proportions(reference, edges)
    return float(np.sum((p - q) * np.log(p / q)))


def chi_square_pvalue(current: FloatArray, reference: FloatArray, edges: FloatArray) -> float:
    """p-value of Pearson's two-sample chi-square test that both samples share the
    proportions of the bins `edges` make (the PSI's): the test behind a PSI, which
    weighs every part of the distribution where KS looks only at its largest gap."""
    observed = np.stack([_counts(current, edges), _counts(reference, edges)])
    used = observed.sum(axis=0) > 0
    observed = observed[:, used]
    if observed.shape[1] < 2:
        return 1.0
    expected = observed.sum(axis=0) * observed.sum(axis=1, keepdims=True) / observed.sum()
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    return chi_square_survival(statistic, observed.shape[1] - 1)


def chi_square_survival(x: float, df: int) -> float:
    """P(X >= x) for X ~ chi-square(df): the regularised upper gamma Q(df/2, x/2) by
    Q(a + 1, h) = Q(a, h) + h^a e^-h / Gamma(a + 1), from Q(1/2, h) = erfc(sqrt h) or
    Q(1, h) = e^-h. Exact to rounding, far into the tail (no scipy needed)."""
    if x <= 0.0:
        return 1.0
    h = x / 2.0
    a, q = (0.5, math.erfc(math.sqrt(h))) if df % 2 else (1.0, math.exp(-h))
    while a < df / 2.0:
        q += math.exp(a * math.log(h) - h - math.lgamma(a + 1.0))
        a += 1.0
    return min(1.0, q)


def _proportions(values: FloatArray, edges: FloatArray) -> FloatArray:
    return np.maximum(_counts(values, edges) / values.size, PSI_EPSILON)


def _counts(values: FloatArray, edges: FloatArray) -> FloatArray:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
    return counts.astype(np.float64)
