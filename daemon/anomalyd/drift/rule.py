"""The decision rule: has this field's distribution shifted from its reference?

A window is compared with its reference on three kinds of difference. Each must
be *material* (an effect size at or above its threshold, independent of how
many events the window holds, so a large window does not flag a trivial
shift) and *clear of sampling noise* (at the `significance` level, so a small
window does not flag noise). A field is shifted when any of the three is both:

- location: |mean - ref mean| / ref std >= `mean_shift` (default 0.5), and
  Welch's z for the difference of means >= z(significance) (3.29 at 0.001);
- spread: the ratio of the samples' mean absolute deviations from their
  medians is >= `scale_ratio` (default 1.25) or <= 1/`scale_ratio`, and
  |ln ratio| / its standard error >= z(significance), the error estimated from
  the samples themselves (delta method), so heavy tails widen it;
- shape: KS statistic >= `ks` (0.1) and PSI >= `psi` (0.2), and the KS
  p-value <= `significance`: a p-value alone would flag trivial shifts once
  windows hold thousands of events; here it only screens out noise.

Wasserstein-1 is reported divided by the reference's std, so it reads in
reference standard deviations on every stream (a pure mean shift of d std
gives d); it is not part of the rule, whose location test says the same with
an exact standard error. A single shifted window is only a suspicion:
`anomalyd.drift.episode` confirms it over consecutive windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from statistics import NormalDist
from typing import Any

import numpy as np

from anomalyd.config.drift import DriftThresholds
from anomalyd.drift import distance
from anomalyd.drift.sample import FloatArray
from anomalyd.drift.summary import Stats

#: Stands in for a reference std of 0 (a constant stream): any change is then material.
_TINY = 1e-12


class WindowJudgement(StrEnum):
    SHIFTED = "shifted"
    UNCHANGED = "unchanged"
    TOO_FEW_EVENTS = "too_few_events"
    NO_REFERENCE = "no_reference"


@dataclass(frozen=True, slots=True)
class Comparison:
    """A window against its reference: the distances, effect sizes and what they say."""

    psi: float
    ks: float
    ks_pvalue: float
    wasserstein: float  # in reference standard deviations
    mean_shift: float  # signed, in reference standard deviations
    scale_ratio: float  # spread of the window / spread of the reference
    location: bool
    spread: bool
    shape: bool

    @property
    def shifted(self) -> bool:
        return self.location or self.spread or self.shape

    @property
    def strength(self) -> float:
        """How far past the rule this is, to pick the field an alert talks about."""
        return max(abs(self.mean_shift), abs(math.log(self.scale_ratio)), self.ks)

    def to_json(self) -> dict[str, Any]:
        return {
            "psi": self.psi,
            "ks": self.ks,
            "ks_pvalue": self.ks_pvalue,
            "wasserstein": self.wasserstein,
            "mean_shift": self.mean_shift,
            "scale_ratio": self.scale_ratio,
            "shifted_by": [
                name
                for name, hit in (
                    ("location", self.location),
                    ("spread", self.spread),
                    ("shape", self.shape),
                )
                if hit
            ],
        }


@dataclass(frozen=True, slots=True)
class Side:
    """One side of a comparison: its stats and its sorted sample."""

    stats: Stats
    sample: FloatArray


def compare(current: Side, reference: Side, thresholds: DriftThresholds, bins: int) -> Comparison:
    z_min = NormalDist().inv_cdf(1.0 - thresholds.significance / 2.0)
    scale = max(reference.stats.std, _TINY)
    shift = (current.stats.mean - reference.stats.mean) / scale
    ratio = _spread_ratio(current, reference)
    ks = distance.ks_statistic(current.sample, reference.sample)
    ks_p = distance.ks_pvalue(ks, current.sample.size, reference.sample.size)
    psi = distance.psi(current.sample, reference.sample, distance.psi_edges(reference.sample, bins))
    return Comparison(
        psi=psi,
        ks=ks,
        ks_pvalue=ks_p,
        wasserstein=distance.wasserstein(current.sample, reference.sample) / scale,
        mean_shift=shift,
        scale_ratio=ratio,
        location=abs(shift) >= thresholds.mean_shift and _mean_z(current, reference) >= z_min,
        spread=_spread_material(ratio, thresholds.scale_ratio)
        and _spread_z(ratio, current, reference) >= z_min,
        shape=ks >= thresholds.ks and psi >= thresholds.psi and ks_p <= thresholds.significance,
    )


def _mean_z(current: Side, reference: Side) -> float:
    """Welch's z for the difference of the two means (from every event, not the samples)."""
    cur, ref = current.stats, reference.stats
    standard_error = math.sqrt(cur.std**2 / cur.count + ref.std**2 / ref.count)
    return abs(cur.mean - ref.mean) / max(standard_error, _TINY)


def _spread_ratio(current: Side, reference: Side) -> float:
    return _spread(current.sample) / _spread(reference.sample)


def _spread_material(ratio: float, threshold: float) -> bool:
    return abs(math.log(ratio)) >= math.log(threshold)


def _spread_z(ratio: float, current: Side, reference: Side) -> float:
    variance = _log_spread_variance(current.sample) + _log_spread_variance(reference.sample)
    return abs(math.log(ratio)) / max(math.sqrt(variance), _TINY)


def _spread(sample: FloatArray) -> float:
    """Mean absolute deviation from the median: 88% as efficient as the std on Gaussian
    data, and its error needs only a finite variance (heavy tails do not blow it up)."""
    return max(float(np.mean(np.abs(sample - np.median(sample)))), _TINY)


def _log_spread_variance(sample: FloatArray) -> float:
    """Var(ln spread) by the delta method, from the sample's own deviations."""
    deviations = np.abs(sample - np.median(sample))
    mean = max(float(np.mean(deviations)), _TINY)
    return float(np.var(deviations)) / (sample.size * mean * mean)
