"""Distances between two samples: PSI, Kolmogorov-Smirnov and Wasserstein-1.

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


def _proportions(values: FloatArray, edges: FloatArray) -> FloatArray:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
    return np.maximum(counts / values.size, PSI_EPSILON)
