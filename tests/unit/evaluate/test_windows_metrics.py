"""Plain detection metrics against label windows: row ranges, precision, recall and delays."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from anomalyd.evaluate import DetectionMetrics, alerts_at, detection_metrics, window_rows

TS = [60.0 * i for i in range(20)]  # 20 rows a minute apart
WINDOWS = [(300.0, 540.0), (840.0, 960.0)]  # rows 5-9 and 14-16


def alerting(rows: Sequence[int]) -> list[bool]:
    return [i in rows for i in range(len(TS))]


@pytest.mark.parametrize(
    ("windows", "expected"),
    [
        (WINDOWS, [(5, 9), (14, 16)]),
        ([(0.0, 0.0)], [(0, 0)]),
        ([(-100.0, 30.0)], [(0, 0)]),  # rows inside the range, whatever its bounds
        ([(290.0, 310.0)], [(5, 5)]),
        ([(1100.0, 5000.0)], [(19, 19)]),
    ],
)
def test_window_rows(windows: list[tuple[float, float]], expected: list[tuple[int, int]]) -> None:
    assert window_rows(TS, windows) == expected


@pytest.mark.parametrize(
    ("windows", "message"),
    [
        ([(600.0, 300.0)], "empty, unsorted or overlaps"),
        ([(300.0, 600.0), (600.0, 900.0)], "empty, unsorted or overlaps"),
        ([(600.0, 900.0), (0.0, 60.0)], "empty, unsorted or overlaps"),
        ([(301.0, 302.0)], "covers no row"),
        ([(2000.0, 3000.0)], "covers no row"),
    ],
)
def test_window_rows_rejects(windows: list[tuple[float, float]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        window_rows(TS, windows)


def test_precision_recall_and_delays_by_hand() -> None:
    # One false alert (row 2), two inside the first window (rows 7, 8), none in the second.
    m = detection_metrics(TS, alerting([2, 7, 8]), WINDOWS)
    assert (m.alerts, m.true_alerts, m.windows, m.detected) == (3, 2, 2, 1)
    assert m.precision == pytest.approx(2 / 3)
    assert m.recall == 0.5
    assert (m.delays_rows, m.delays_seconds) == ((2,), (120.0,))
    assert (m.mean_delay_rows, m.median_delay_rows) == (2.0, 2.0)
    assert (m.mean_delay_seconds, m.median_delay_seconds) == (120.0, 120.0)


def test_delays_over_several_windows() -> None:
    m = detection_metrics(TS, alerting([5, 16, 19]), WINDOWS)
    assert m.precision == pytest.approx(2 / 3)
    assert m.recall == 1.0
    assert m.delays_rows == (0, 2)
    assert m.mean_delay_rows == 1.0
    assert m.median_delay_seconds == 60.0


def test_delay_in_seconds_counts_from_the_label_start() -> None:
    m = detection_metrics(TS, alerting([5]), [(290.0, 400.0)])
    assert (m.delays_rows, m.delays_seconds) == ((0,), (10.0,))


def test_probation_ignores_early_alerts() -> None:
    m = detection_metrics(TS, alerting([1, 2, 6, 7]), WINDOWS, probation=7)
    assert (m.alerts, m.true_alerts, m.delays_rows) == (1, 1, (2,))


def test_undefined_ratios_are_none() -> None:
    silent = detection_metrics(TS, alerting([]), WINDOWS)
    assert (silent.precision, silent.recall) == (None, 0.0)
    assert silent.mean_delay_rows is silent.median_delay_seconds is None
    unlabelled = detection_metrics(TS, alerting([3]), [])
    assert (unlabelled.precision, unlabelled.recall) == (0.0, None)


def test_alerts_at_fires_at_or_above_the_threshold() -> None:
    assert alerts_at([0.1, 0.5, 0.9], 0.5) == [False, True, True]


def test_results_pool_over_series() -> None:
    a = detection_metrics(TS, alerting([2, 7]), WINDOWS)
    b = detection_metrics(TS, alerting([15]), WINDOWS)
    pooled = a + b
    assert pooled == DetectionMetrics(3, 2, 4, 2, (2, 1), (120.0, 60.0))
    assert (pooled.precision, pooled.recall, pooled.mean_delay_rows) == (2 / 3, 0.5, 1.5)


def test_alerts_must_match_rows() -> None:
    with pytest.raises(ValueError, match="3 alerts for 20 rows"):
        detection_metrics(TS, [True] * 3, WINDOWS)
