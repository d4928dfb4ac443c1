"""NAB scoring of per-row anomaly scores against labelled windows: pure, no I/O.

Implements the method summarised in the benchmark's README, following NAB's own code
(``nab/sweeper.py``, ``nab/util.py``, ``nab/runner.py``) where the summary is silent:

- Probation: the first ``min(floor(0.15 * n), 750)`` rows (``util.getProbationPeriod``). Those
  rows are ignored entirely, window rows included; a window wholly inside the probation is not
  scored at all (neither found nor missed). An FP's preceding window may lie in the probation.
- A detection at row ``i`` of a window whose last row is ``r`` and which is ``w`` rows wide is
  worth ``tpWeight * S(-(r - i + 1) / w) / S(-1)``: exactly ``tpWeight`` at the first row, a
  small positive worth at the last, never zero (``Sweeper.calcSweepScore``). The window keeps
  its best (earliest) detection's worth *instead of* ``-fnWeight``.
- A detection outside every window is worth ``fpWeight * S((i - r) / (w - 1))`` for the nearest
  preceding window (last row ``r``, ``w`` rows wide), ``-fpWeight`` if none precedes it. For a
  one-row window NAB divides by zero; here ``w - 1`` is taken as 1.
- ``S(y) = 2 / (1 + e^(5y)) - 1``, and -1 for ``y > 3`` strictly.
- A window covers the rows whose timestamps lie in ``[start, end]`` (``scorer.Window``; the
  sweeper needs labels that are exact row timestamps, as they are in NAB's data).
- Threshold candidates are the distinct scores of non-probationary rows, plus "never fire"
  (``inf`` here, 1.1 in NAB); ties go to the highest threshold (NAB sorts the thresholds,
  highest first, stably by score). A row fires when its score is ``>= threshold``.
- Normalisation (``Runner.normalize``): ``null`` is the never-firing score, ``-fnWeight`` per
  scored window; ``perfect`` is ``tpWeight`` per labelled window. The two window counts differ
  only when a window lies wholly in a probation, which never happens in NAB's corpus.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from anomalyd.evaluate.corpus import Profile, Series
from anomalyd.evaluate.windows import window_rows

__all__ = [
    "NEVER",
    "PROFILES",
    "ProfileResult",
    "Scores",
    "SeriesScore",
    "nab_report",
    "normalised",
    "optimise_threshold",
    "probation_rows",
    "scaled_sigmoid",
    "score_series",
    "threshold_curve",
]

Floats = npt.NDArray[np.float64]
Scores = Sequence[float] | Floats
"""One anomaly score per row of a series (finite; NAB's are in [0, 1])."""

NEVER = math.inf
"""The "never fire" threshold."""

PROFILES = {
    p.name: p
    for p in (
        Profile("standard", tp_weight=1.0, fp_weight=0.11, fn_weight=1.0),
        Profile("reward_low_FP_rate", tp_weight=1.0, fp_weight=0.22, fn_weight=1.0),
        Profile("reward_low_FN_rate", tp_weight=1.0, fp_weight=0.11, fn_weight=2.0),
    )
}
"""NAB's three profiles, as in its ``config/profiles.json``."""


def scaled_sigmoid(y: float) -> float:
    """NAB's ``S(y) = 2 / (1 + e^(5y)) - 1``, taken as -1 for ``y > 3``.

    >>> round(scaled_sigmoid(-1.0), 5), scaled_sigmoid(0.0), scaled_sigmoid(3.5)
    (0.98661, 0.0, -1.0)
    """
    return -1.0 if y > 3.0 else 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def probation_rows(n: int) -> int:
    """Rows of NAB's probationary period in a series of `n` rows.

    >>> probation_rows(4032), probation_rows(10_000)
    (604, 750)
    """
    return min(math.floor(0.15 * n), 750)


@dataclass(frozen=True)
class SeriesScore:
    """One series scored at one threshold.

    `tp` and `fn` count scored windows found and missed (NAB counts rows), `fp` the rows
    firing outside every window after the probation. `delays` has, for each labelled window
    in order, the rows from its first row to its earliest counted detection, or None when it
    was missed or not scored.
    """

    raw: float
    tp: int
    fp: int
    fn: int
    delays: tuple[int | None, ...]


@dataclass(frozen=True)
class ProfileResult:
    """A detector on a corpus under one profile: best threshold, raw and normalised scores."""

    threshold: float
    raw: float
    normalised: float


@dataclass(frozen=True)
class _Layout:
    """Row geometry of one series.

    `window_of` is each row's window index or -1; `unit` is each row's worth as a detection
    per unit weight: the TP worth / tpWeight inside a window, the FP worth / fpWeight outside.
    """

    probation: int
    rows: list[tuple[int, int]]
    window_of: npt.NDArray[np.int64]
    unit: Floats


def _sigmoid(y: Floats) -> Floats:
    return np.where(y > 3.0, -1.0, 2.0 / (1.0 + np.exp(5.0 * np.minimum(y, 3.0))) - 1.0)


_S_MINUS_1 = scaled_sigmoid(-1.0)


def _layout(series: Series) -> _Layout:
    n = len(series.timestamps)
    rows = window_rows(series.timestamps, series.windows)
    window_of = np.full(n, -1, dtype=np.int64)
    unit = np.full(n, -1.0)  # no preceding window: the full -fpWeight
    for k, (a, b) in enumerate(rows):
        stop = rows[k + 1][0] if k + 1 < len(rows) else n  # the FP rows after this window
        width = b - a + 1
        window_of[a : b + 1] = k
        unit[a : b + 1] = _sigmoid(-(b - np.arange(a, b + 1) + 1) / width) / _S_MINUS_1
        unit[b + 1 : stop] = _sigmoid((np.arange(b + 1, stop) - b) / max(width - 1, 1))
    return _Layout(probation_rows(n), rows, window_of, unit)


def _as_array(series: Series, scores: Scores) -> Floats:
    array = np.asarray(scores, dtype=np.float64)
    if array.shape != (len(series.timestamps),):
        raise ValueError(f"{series.name}: {array.size} scores for {len(series.timestamps)} rows")
    if not np.isfinite(array).all():
        raise ValueError(f"{series.name}: scores must be finite")
    return array


def score_series(series: Series, scores: Scores, threshold: float, profile: Profile) -> SeriesScore:
    """Score one series' detections (rows with ``score >= threshold``) directly."""
    layout = _layout(series)
    fired = _as_array(series, scores) >= threshold
    fired[: layout.probation] = False
    raw, tp, fn = 0.0, 0, 0
    delays: list[int | None] = []
    for a, b in layout.rows:
        hits = np.flatnonzero(fired[a : b + 1])
        delays.append(int(hits[0]) if hits.size else None)
        if hits.size:
            raw += profile.tp_weight * float(layout.unit[a + hits[0]])
            tp += 1
        elif b >= layout.probation:
            raw -= profile.fn_weight
            fn += 1
    false_positives = fired & (layout.window_of < 0)
    raw += profile.fp_weight * float(layout.unit[false_positives].sum())
    return SeriesScore(raw, tp, int(false_positives.sum()), fn, tuple(delays))


@dataclass(frozen=True)
class _Curve:
    """Per threshold (highest first, starting with NEVER), the parts of the corpus score."""

    thresholds: Floats
    tp: Floats  # sum of the unit worths of the windows found
    found: Floats  # windows found
    fp: Floats  # sum of the unit worths of the false positives
    windows: int  # windows scored

    def totals(self, profile: Profile) -> Floats:
        detections = profile.tp_weight * self.tp + profile.fp_weight * self.fp
        return detections - profile.fn_weight * (self.windows - self.found)


def _column(
    key: Floats, tp: Floats | float = 0.0, found: float = 0.0, fp: Floats | float = 0.0
) -> Floats:
    """Events as columns ``(key, tp, found, fp)``, for every threshold ``<= key``."""
    return np.stack(np.broadcast_arrays(key, tp, found, fp))


def _events(series: Series, scores: Floats) -> tuple[list[Floats], int]:
    """How one series' score parts change as the threshold falls; and its scored windows.

    An event adds its ``tp, found, fp`` to the score parts of every threshold ``<= key``. A
    false positive adds its worth from its own score down. A window row ``i`` is the window's
    earliest detection exactly for the thresholds in ``(max score of the window's earlier
    rows, score_i]``: one event switches its worth on, one switches it off.
    """
    layout = _layout(series)
    p = layout.probation
    outside = np.flatnonzero(layout.window_of[p:] < 0) + p
    events = [_column(scores[outside], fp=layout.unit[outside])]
    windows = 0
    for a, b in layout.rows:
        lo = max(a, p)
        if lo > b:
            continue
        windows += 1
        window = scores[lo : b + 1]
        earlier = np.concatenate(([-np.inf], np.maximum.accumulate(window)[:-1]))
        first = np.flatnonzero(window > earlier)
        events.append(_column(window[first], tp=layout.unit[lo + first], found=1.0))
        off = first[earlier[first] > -np.inf]
        events.append(_column(earlier[off], tp=-layout.unit[lo + off], found=-1.0))
    return events, windows


def _sweep(corpus_scores: Sequence[tuple[Series, Scores]]) -> _Curve:
    """All thresholds' score parts at once: O(n log n) over the corpus' rows."""
    events: list[Floats] = []
    candidates: list[Floats] = []
    windows = 0
    for series, raw_scores in corpus_scores:
        scores = _as_array(series, raw_scores)
        series_events, series_windows = _events(series, scores)
        events += series_events
        candidates.append(scores[probation_rows(len(scores)) :])
        windows += series_windows
    key, tp, found, fp = np.concatenate(events, axis=1) if events else np.zeros((4, 0))
    levels = np.unique(np.concatenate(candidates)) if candidates else np.zeros(0)
    bins = np.searchsorted(levels, key, side="right") - 1

    def below(weights: Floats) -> Floats:
        """For NEVER then each level, highest first: the sum of events keyed at or above it."""
        per_level = np.bincount(bins, weights=weights, minlength=levels.size)[::-1]
        return np.concatenate(([0.0], np.cumsum(per_level)))

    thresholds = np.concatenate(([NEVER], levels[::-1]))
    return _Curve(thresholds, below(tp), below(found), below(fp), windows)


def threshold_curve(
    corpus_scores: Sequence[tuple[Series, Scores]], profile: Profile
) -> list[tuple[float, float]]:
    """``(threshold, raw corpus score)`` for every candidate threshold, highest first."""
    curve = _sweep(corpus_scores)
    return list(zip(curve.thresholds.tolist(), curve.totals(profile).tolist(), strict=True))


def _best(curve: _Curve, profile: Profile) -> tuple[float, float]:
    totals = curve.totals(profile)
    best = int(np.argmax(totals))  # the first maximum: ties go to the highest threshold
    return float(curve.thresholds[best]), float(totals[best])


def optimise_threshold(
    corpus_scores: Sequence[tuple[Series, Scores]], profile: Profile
) -> tuple[float, float]:
    """The threshold maximising the corpus' raw score under `profile`, and that score."""
    return _best(_sweep(corpus_scores), profile)


def normalised(raw_total: float, corpus: Sequence[Series], profile: Profile) -> float:
    """``100 * (raw - null) / (perfect - null)``: 0 for never firing, 100 for perfect.

    ``null`` is ``-fnWeight`` per scored window, ``perfect`` ``tpWeight`` per labelled window.
    """
    scored = 0
    for series in corpus:
        probation = probation_rows(len(series.timestamps))
        rows = window_rows(series.timestamps, series.windows)
        scored += sum(1 for _, last in rows if last >= probation)
    null = -profile.fn_weight * scored
    perfect = profile.tp_weight * sum(len(series.windows) for series in corpus)
    if perfect == null:
        raise ValueError("a corpus without scored windows cannot be normalised")
    return 100.0 * (raw_total - null) / (perfect - null)


def nab_report(
    corpus_scores: Sequence[tuple[Series, Scores]],
    profiles: Sequence[Profile] = tuple(PROFILES.values()),
) -> dict[str, ProfileResult]:
    """A detector's NAB result on a corpus for each profile, by profile name."""
    curve = _sweep(corpus_scores)
    corpus = [series for series, _ in corpus_scores]
    report = {}
    for profile in profiles:
        threshold, raw = _best(curve, profile)
        report[profile.name] = ProfileResult(threshold, raw, normalised(raw, corpus, profile))
    return report
