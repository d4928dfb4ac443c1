"""Drift: per-stream, per-field window statistics compared with a reference, drift
episodes confirmed over consecutive windows, and one alert per episode.

Pure: no I/O and no clock (times are passed in). Only this package, features and
detect import River.
"""

from anomalyd.drift.distance import ks_pvalue, ks_statistic, psi, psi_edges, wasserstein
from anomalyd.drift.episode import Change, Episode, Status, step
from anomalyd.drift.monitor import DriftMonitor, DriftState, DriftUpdate, restarts_streams
from anomalyd.drift.record import ClosedBy, ReferenceSummary, StreamCounts, WindowRecord
from anomalyd.drift.rule import Comparison, Side, WindowJudgement, compare
from anomalyd.drift.summary import Stats

__all__ = [
    "Change",
    "ClosedBy",
    "Comparison",
    "DriftMonitor",
    "DriftState",
    "DriftUpdate",
    "Episode",
    "ReferenceSummary",
    "Side",
    "Stats",
    "Status",
    "StreamCounts",
    "WindowJudgement",
    "WindowRecord",
    "compare",
    "ks_pvalue",
    "ks_statistic",
    "psi",
    "psi_edges",
    "restarts_streams",
    "step",
    "wasserstein",
]
