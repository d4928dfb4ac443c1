"""Plain detection metrics against labelled anomaly windows (``backtest --labels``).

Definitions (an *alert* is a row flagged anomalous; a *window* is an inclusive time range):

- precision = alerts inside any window / all alerts (per alert, so a long burst inside one
  window counts every row of it; None when there are no alerts);
- recall = windows with at least one alert / windows (None when there are no windows);
- delay of a detected window = from the window's start to its first alert, in rows (first alert
  row - first window row) and in seconds (first alert timestamp - window start).

Alerts before row `probation` are ignored, as NAB ignores its probationary period.
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["DetectionMetrics", "alerts_at", "detection_metrics", "window_rows"]


def window_rows(
    timestamps: Sequence[float], windows: Sequence[tuple[float, float]]
) -> list[tuple[int, int]]:
    """Inclusive ``(first, last)`` row indices of each window over sorted `timestamps`.

    A window covers the rows whose timestamp lies in ``[start, end]``. Windows must be sorted,
    disjoint and cover at least one row each, else ValueError.

    >>> window_rows([0.0, 10.0, 20.0, 30.0], [(10.0, 25.0)])
    [(1, 2)]
    """
    rows: list[tuple[int, int]] = []
    previous_end = float("-inf")
    for start, end in windows:
        if not previous_end < start <= end:
            raise ValueError(f"window ({start}, {end}) is empty, unsorted or overlaps the last")
        first = bisect.bisect_left(timestamps, start)
        last = bisect.bisect_right(timestamps, end) - 1
        if first > last:
            raise ValueError(f"window ({start}, {end}) covers no row")
        rows.append((first, last))
        previous_end = end
    return rows


def alerts_at(scores: Sequence[float], threshold: float) -> list[bool]:
    """Rows whose score is at or above `threshold` (NAB's detection rule)."""
    return [score >= threshold for score in scores]


@dataclass(frozen=True)
class DetectionMetrics:
    """Counts and delays of one or more series' alerts against their windows."""

    alerts: int
    true_alerts: int
    windows: int
    detected: int
    delays_rows: tuple[int, ...]
    delays_seconds: tuple[float, ...]

    @property
    def precision(self) -> float | None:
        return self.true_alerts / self.alerts if self.alerts else None

    @property
    def recall(self) -> float | None:
        return self.detected / self.windows if self.windows else None

    @property
    def mean_delay_rows(self) -> float | None:
        return statistics.fmean(self.delays_rows) if self.delays_rows else None

    @property
    def median_delay_rows(self) -> float | None:
        return float(statistics.median(self.delays_rows)) if self.delays_rows else None

    @property
    def mean_delay_seconds(self) -> float | None:
        return statistics.fmean(self.delays_seconds) if self.delays_seconds else None

    @property
    def median_delay_seconds(self) -> float | None:
        return statistics.median(self.delays_seconds) if self.delays_seconds else None

    def __add__(self, other: DetectionMetrics) -> DetectionMetrics:
        """Pool two results (e.g. over the series of a corpus)."""
        return DetectionMetrics(
            self.alerts + other.alerts,
            self.true_alerts + other.true_alerts,
            self.windows + other.windows,
            self.detected + other.detected,
            self.delays_rows + other.delays_rows,
            self.delays_seconds + other.delays_seconds,
        )


def detection_metrics(
    timestamps: Sequence[float],
    alerts: Sequence[bool],
    windows: Sequence[tuple[float, float]],
    *,
    probation: int = 0,
) -> DetectionMetrics:
    """Score per-row `alerts` of one series against its label `windows`.

    >>> ts, alerts = [0.0, 60.0, 120.0, 180.0], [False, False, True, True]
    >>> m = detection_metrics(ts, alerts, [(60.0, 120.0)])
    >>> m.precision, m.recall, m.delays_rows, m.delays_seconds
    (0.5, 1.0, (1,), (60.0,))
    """
    if len(alerts) != len(timestamps):
        raise ValueError(f"{len(alerts)} alerts for {len(timestamps)} rows")
    fired = [i for i, alert in enumerate(alerts) if alert and i >= probation]
    true_alerts = 0
    delays_rows: list[int] = []
    delays_seconds: list[float] = []
    for (start, _), (first, last) in zip(windows, window_rows(timestamps, windows), strict=True):
        lo = bisect.bisect_left(fired, first)
        hits = bisect.bisect_right(fired, last) - lo
        true_alerts += hits
        if hits:
            delays_rows.append(fired[lo] - first)
            delays_seconds.append(timestamps[fired[lo]] - start)
    return DetectionMetrics(
        alerts=len(fired),
        true_alerts=true_alerts,
        windows=len(windows),
        detected=len(delays_rows),
        delays_rows=tuple(delays_rows),
        delays_seconds=tuple(delays_seconds),
    )
