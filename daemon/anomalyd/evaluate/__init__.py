"""Evaluation: score a detector's per-row anomaly scores against labelled anomaly windows.

`nab` scores as the Numenta Anomaly Benchmark does (pure); `windows` has plain precision,
recall and delay metrics (pure); `corpus` loads NAB's data, labels and profiles from disk.
"""

from anomalyd.evaluate.corpus import Profile, Series, load_corpus, load_profiles
from anomalyd.evaluate.nab import (
    NEVER,
    PROFILES,
    ProfileResult,
    Scores,
    SeriesScore,
    nab_report,
    normalised,
    optimise_threshold,
    probation_rows,
    scaled_sigmoid,
    score_series,
    threshold_curve,
)
from anomalyd.evaluate.windows import DetectionMetrics, alerts_at, detection_metrics, window_rows

__all__ = [
    "NEVER",
    "PROFILES",
    "DetectionMetrics",
    "Profile",
    "ProfileResult",
    "Scores",
    "Series",
    "SeriesScore",
    "alerts_at",
    "detection_metrics",
    "load_corpus",
    "load_profiles",
    "nab_report",
    "normalised",
    "optimise_threshold",
    "probation_rows",
    "scaled_sigmoid",
    "score_series",
    "threshold_curve",
    "window_rows",
]
