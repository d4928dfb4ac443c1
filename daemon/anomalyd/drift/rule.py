"""The decision rule: has this field's distribution shifted from its reference?

A window is compared with its reference on three kinds of difference. Each must
be *material* (an effect size at or above its threshold, independent of how
many events the window holds, so a large window does not flag a trivial
shift) and *clear of sampling noise* (at the `significance` level, so a small
window does not flag noise). A field is shifted when any of the three is both:

- location: the difference of the 10%-trimmed means over the ref std >= `mean_shift`
  (default 0.3), and Yuen's t for it beyond Student's t at `significance` (Yuen's
  degrees of freedom). Trimmed, so an excursion that fills an eighth of two windows
  (30 minutes at +6 sd across the edge of 2-hour windows) is not a shift of level:
  with plain means it opened an episode in 89 of 100 seeded streams, trimmed in 3;
- spread: the ratio of the samples' mean absolute deviations from their
  medians is >= `scale_ratio` (default 1.25) or <= 1/`scale_ratio`, and
  |ln ratio| / its standard error >= z(significance), the error estimated from
  the samples themselves (delta method), so heavy tails widen it; or, on streams
  whose tails are near a normal's (kurtosis <= 4), the ratio of standard deviations,
  by the F distribution with degrees of freedom scaled to the kurtosis (the more
  powerful test there: variance x2 in two 2-hour windows at one event a minute,
  where the trimmed deviation needs three or four);
- shape: KS statistic >= `ks` (0.1) and PSI >= `psi` (0.2), and the KS
  p-value or the chi-square p-value of the PSI's bins <= `significance`: a p-value
  alone would flag trivial shifts once windows hold thousands of events; here it
  only screens out noise. KS alone is weak on a change of skew or of modes in a
  small window (a skewed 2-hour window at one event a minute: KS p ~ 0.003, the
  bins' chi-square ~ 1e-10).

Wasserstein-1 is reported divided by the reference's std, so it reads in
reference standard deviations on every stream (a pure mean shift of d std
gives d); it is not part of the rule, whose location test says the same with
an exact standard error. A single shifted window is only a suspicion:
`anomalyd.drift.episode` confirms it over consecutive windows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from statistics import NormalDist
from typing import Any

import numpy as np

from anomalyd.config.drift import DriftThresholds
from anomalyd.drift import distance, summary
from anomalyd.drift.sample import FloatArray
from anomalyd.drift.summary import Stats

#: Stands in for a reference std of 0 (a constant stream): any change is then material.
_TINY = 1e-12


class WindowJudgement(StrEnum):
    SHIFTED = "shifted"
    UNCHANGED = "unchanged"
    TOO_FEW_EVENTS = "too_few_events"
    NO_REFERENCE = "no_reference"
    #: The stream's first seasonal period: its cycle is being learned, not judged.
    LEARNING = "learning"
    #: A later window of a suspicion: it points the same way, but the suspicion's
    #: windows pooled are not clear of noise yet (the suspicion goes on).
    LEANING = "leaning"


@dataclass(frozen=True, slots=True)
class Comparison:
    """A window against its reference: the distances, effect sizes and what they say."""

    psi: float
    ks: float
    ks_pvalue: float
    chi2_pvalue: float  # of the PSI's bins, two samples
    wasserstein: float  # in reference standard deviations
    mean_shift: float  # signed, in reference standard deviations
    scale_ratio: float  # spread of the window / spread of the reference
    location: bool
    spread: bool
    shape: bool
    #: Windows compared together: more than 1 for the later windows of a suspicion.
    pooled: int = 1

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
            "chi2_pvalue": self.chi2_pvalue,
            "wasserstein": self.wasserstein,
            "mean_shift": self.mean_shift,
            "scale_ratio": self.scale_ratio,
            "pooled_windows": self.pooled,
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
    spread, ratio = _spread_shift(current, reference, thresholds.scale_ratio, z_min)
    ks = distance.ks_statistic(current.sample, reference.sample)
    ks_p = distance.ks_pvalue(ks, current.sample.size, reference.sample.size)
    edges = distance.psi_edges(reference.sample, bins)
    psi = distance.psi(current.sample, reference.sample, edges)
    chi2_p = distance.chi_square_pvalue(current.sample, reference.sample, edges)
    return Comparison(
        psi=psi,
        ks=ks,
        ks_pvalue=ks_p,
        chi2_pvalue=chi2_p,
        wasserstein=distance.wasserstein(current.sample, reference.sample) / scale,
        mean_shift=shift,
        scale_ratio=ratio,
        location=_location_shift(current, reference, thresholds.mean_shift, z_min) != 0.0,
        spread=spread,
        shape=ks >= thresholds.ks
        and psi >= thresholds.psi
        and min(ks_p, chi2_p) <= thresholds.significance,
    )


#: How clearly each later window of a suspicion must itself point the way the pooled
#: suspicion does (z, one direction: 2.5% by chance alone).
LEAN_Z = 1.96
#: How much of the material effect (`mean_shift`; `scale_ratio` in log terms) that
#: window must show on its own. The pool is held to the whole effect; one window has
#: less power than the pool (with the whole, one window in 30 of a doubled variance at
#: one event a minute, 120 events, fell short and cleared its suspicion).
LEAN_EFFECT = 0.5


def pooled_side(sides: Sequence[Side]) -> Side:
    """Windows taken together: exact moments, their samples concatenated."""
    sample = np.sort(np.concatenate([s.sample for s in sides]))
    return Side(summary.pooled([s.stats for s in sides], sample), sample)


def leans(
    current: Side, reference: Side, pooled: Comparison, thresholds: DriftThresholds, bins: int
) -> bool:
    """Whether the newest window of a suspicion itself shows a difference its windows
    pooled show: on a kind the pool is shifted by, in the pool's direction, by at least
    LEAN_EFFECT of the material effect, and at z >= LEAN_Z on its own. So one odd window
    (a burst of noise) does not carry the windows after it."""
    if not pooled.shifted:
        return False
    if pooled.location:
        shift = _location_shift(current, reference, LEAN_EFFECT * thresholds.mean_shift, LEAN_Z)
        if _leans(shift, pooled.mean_shift):
            return True
    if pooled.spread:
        material = thresholds.scale_ratio**LEAN_EFFECT
        spread, ratio = _spread_shift(current, reference, material, LEAN_Z)
        if spread and _leans(math.log(ratio), math.log(pooled.scale_ratio)):
            return True
    if not pooled.shape:
        return False
    ks = distance.ks_statistic(current.sample, reference.sample)
    if ks < thresholds.ks:
        return False
    level = 2.0 * (1.0 - NormalDist().cdf(LEAN_Z))
    if distance.ks_pvalue(ks, current.sample.size, reference.sample.size) <= level:
        return True
    edges = distance.psi_edges(reference.sample, bins)
    return distance.chi_square_pvalue(current.sample, reference.sample, edges) <= level


def with_significance(thresholds: DriftThresholds, significance: float) -> DriftThresholds:
    return thresholds.model_copy(update={"significance": significance})


def _leans(value: float, like: float) -> bool:
    return value * like > 0.0


def _location_shift(current: Side, reference: Side, material: float, z_min: float) -> float:
    """The shift of the trimmed means, in reference standard deviations, when it is at
    least `material` and clear of noise (Yuen's t beyond Student's t at the level z_min
    stands for); 0 otherwise."""
    cur_mean, cur_error, cur_kept = _trimmed(current.sample)
    ref_mean, ref_error, ref_kept = _trimmed(reference.sample)
    difference, error = cur_mean - ref_mean, cur_error + ref_error
    shift = difference / max(reference.stats.std, _TINY)
    if abs(shift) < material:
        return 0.0
    if error <= 0.0:  # constant samples: any material difference is clear
        return shift
    freedom = error**2 / (cur_error**2 / (cur_kept - 1) + ref_error**2 / (ref_kept - 1))
    return shift if abs(difference) / math.sqrt(error) >= _t_quantile(z_min, freedom) else 0.0


#: The share of each tail a trimmed mean leaves out.
_TRIM = 0.1


def _trimmed(sample: FloatArray) -> tuple[float, float, int]:
    """A sorted sample's trimmed mean, its squared standard error (Yuen: the winsorized
    sum of squares over h(h-1)) and h, the values it keeps."""
    n = sample.size
    cut = math.floor(_TRIM * n)  # keeps at least 2 of 2 or more values
    kept = n - 2 * cut
    if kept < 2:  # one value: no error to estimate (2 keeps Yuen's freedom finite)
        return float(np.mean(sample)), 0.0, 2
    winsorized = np.clip(sample, sample[cut], sample[n - cut - 1])
    squares = float(np.sum((winsorized - np.mean(winsorized)) ** 2))
    return float(np.mean(sample[cut : n - cut])), squares / (kept * (kept - 1)), kept


def _t_quantile(z: float, freedom: float) -> float:
    """Student's t quantile for the normal one z, by the Cornish-Fisher expansion (Hill
    1970), close for the degrees of freedom windows have (tens and more)."""
    v = max(freedom, 1.0)
    z2 = z * z
    return (
        z
        + z * (z2 + 1) / (4 * v)
        + z * ((5 * z2 + 16) * z2 + 3) / (96 * v**2)
        + z * (((3 * z2 + 19) * z2 + 17) * z2 - 15) / (384 * v**3)
        + z * ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) / (92160 * v**4)
    )


def _spread_shift(
    current: Side, reference: Side, threshold: float, z_min: float
) -> tuple[bool, float]:
    """Whether the spread changed, material and at z >= z_min, and the ratio that says
    so: the trimmed deviations' first, else the standard deviations'."""
    ratio = _spread_ratio(current, reference)
    if _spread_material(ratio, threshold) and _spread_z(ratio, current, reference) >= z_min:
        return True, ratio
    std_ratio, std_z = _std_change(current, reference)
    if _spread_material(std_ratio, threshold) and std_z >= z_min:
        return True, std_ratio
    return False, ratio


#: The heaviest tail (kurtosis) for which the standard deviations are compared: a
#: Student-t with 10 degrees of freedom. Past it (heavier tails, a window half filled by
#: a burst of noise: 4.9) a sample's kurtosis understates the true one or the burst
#: passes for a change of spread, and the trimmed deviations judge alone (measured: at
#: 6, noise bursts opened an episode per 2 stream-months at one event a second).
MAX_KURTOSIS = 4.0


def _std_change(current: Side, reference: Side) -> tuple[float, float]:
    """The ratio of standard deviations (of every event) and how clear it is of noise,
    as a normal z: the variance ratio's place in the F distribution, with each side's
    degrees of freedom 2(n - 1) / (kurtosis - 1) (n - 1 on a normal tail; a variance
    estimate's own variance is (kurtosis - 1) / n), and one kurtosis for both sides
    (they share it if nothing changed): the larger sample estimate, at least a normal's.
    z is 0 when the tails are too heavy to trust it."""
    cur, ref = current.stats, reference.stats
    if cur.std <= 0.0 or ref.std <= 0.0 or cur.count < 2 or ref.count < 2:
        return 1.0, 0.0
    ratio = cur.std / ref.std
    kurtosis = max(_kurtosis(current.sample), _kurtosis(reference.sample), 3.0)
    if kurtosis > MAX_KURTOSIS:
        return ratio, 0.0
    freedom = 2.0 / (kurtosis - 1.0)
    return ratio, abs(_f_z(ratio * ratio, freedom * (cur.count - 1), freedom * (ref.count - 1)))


def _f_z(f: float, v1: float, v2: float) -> float:
    """The normal z of an F(v1, v2) statistic, by Paulson's (1942) cube-root
    approximation. Not |ln F| over its delta-method error: ln F is skewed when the two
    sides' sizes differ, and that test of a 6-hour window (72 events) against 864 was 9
    times too quick to call a narrower spread at 1e-5 and 9 times too slow for a wider
    one (measured on exact chi-square draws); this is within 25% on both sides."""
    a1, a2 = 2.0 / (9.0 * v1), 2.0 / (9.0 * v2)
    root = math.cbrt(f)
    return ((1.0 - a2) * root - (1.0 - a1)) / math.sqrt(a2 * root * root + a1)


def _kurtosis(sample: FloatArray) -> float:
    if sample.size < 4:
        return math.inf
    deviations = sample - np.mean(sample)
    variance = float(np.mean(deviations**2))
    if variance <= 0.0:
        return math.inf
    return float(np.mean(deviations**4)) / (variance * variance)


def _spread_ratio(current: Side, reference: Side) -> float:
    return _spread(current.sample) / _spread(reference.sample)


def _spread_material(ratio: float, threshold: float) -> bool:
    return abs(math.log(ratio)) >= math.log(threshold)


def _spread_z(ratio: float, current: Side, reference: Side) -> float:
    variance = _log_spread_variance(current.sample) + _log_spread_variance(reference.sample)
    return abs(math.log(ratio)) / max(math.sqrt(variance), _TINY)


def _spread(sample: FloatArray) -> float:
    """The mean absolute deviation from the median, over the nearest `_KEPT` of the
    values: about as efficient as the std on Gaussian data, its error needs only a
    finite variance (heavy tails do not blow it up), and a few minutes of noise in a
    window (or in a window of the reference) move it little."""
    return max(float(np.mean(_deviations(sample))), _TINY)


def _log_spread_variance(sample: FloatArray) -> float:
    """Var(ln spread) by the delta method. The variance of a trimmed mean is that of
    the winsorized deviations (the largest set to the largest kept) over n * kept^2
    (Tukey and McLaughlin): the kept deviations' own variance would understate it."""
    everything = np.sort(np.abs(sample - np.median(sample)))
    kept = max(1, math.ceil(_KEPT * everything.size))
    winsorized = np.minimum(everything, everything[kept - 1])
    mean = max(float(np.mean(everything[:kept])), _TINY)
    share = kept / everything.size
    return float(np.var(winsorized)) / (everything.size * share * share * mean * mean)


#: The share of a sample's absolute deviations the spread averages (the largest go).
_KEPT = 0.9


def _deviations(sample: FloatArray) -> FloatArray:
    deviations = np.sort(np.abs(sample - np.median(sample)))
    return deviations[: max(1, math.ceil(_KEPT * deviations.size))]
