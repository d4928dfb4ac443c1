"""Tumbling windows: alignment to event time, grace, late events, and the three ways a
window closes (event-time watermark, idle processing time, end of input)."""

from __future__ import annotations

import pytest

from anomalyd.config.drift import DriftSection
from anomalyd.domain import Event
from anomalyd.drift import DriftMonitor
from anomalyd.drift.windows import OpenWindows, window_start

T0 = 1_800_000_000.0  # a multiple of 60 and of 300


def monitor(**config: object) -> DriftMonitor:
    settings = {"window": 60, "grace": 10, "min_count": 10, **config}
    return DriftMonitor(DriftSection.model_validate(settings), "http://anomalyd.test")


def observe(m: DriftMonitor, ts: float, value: float = 1.0, stream: str = "s") -> None:
    m.observe(Event(stream, ts, {"value": value}), now=ts)


@pytest.mark.parametrize(
    ("ts", "size", "start"),
    [
        (T0, 60, T0),
        (T0 + 59.999, 60, T0),
        (T0 + 60, 60, T0 + 60),
        (T0 - 0.001, 60, T0 - 60),
        (T0 + 299, 300, T0),
        (0.0, 300, 0.0),
        (-1.0, 300, -300.0),
    ],
)
def test_windows_align_to_multiples_of_their_size(ts: float, size: float, start: float) -> None:
    assert window_start(ts, size) == start


def test_open_windows_close_at_end_plus_grace_oldest_first() -> None:
    windows: OpenWindows[list[float]] = OpenWindows(60, grace=10)
    for ts in (T0 + 5, T0 + 65, T0 + 125, T0 + 30):
        window = windows.get(ts, lambda start: [])
        assert window is not None
        window.append(ts)
    assert windows.close_due(T0 + 69.9) == []
    assert windows.close_due(T0 + 130) == [(T0, [T0 + 5, T0 + 30]), (T0 + 60, [T0 + 65])]
    assert windows.get(T0 + 119.9, lambda start: []) is None  # its window closed: late
    assert len(windows) == 1
    assert windows.close_all() == [(T0 + 120, [T0 + 125])]
    assert windows.get(T0 + 125, lambda start: []) is None


def test_a_watermark_that_goes_back_closes_nothing_and_reopens_nothing() -> None:
    windows: OpenWindows[list[float]] = OpenWindows(60, grace=0)
    windows.get(T0 + 1, lambda start: [])
    assert len(windows.close_due(T0 + 61)) == 1
    assert windows.close_due(T0 + 10) == []
    assert windows.get(T0 + 30, lambda start: []) is None


def test_events_within_grace_join_their_window_later_ones_are_counted_late() -> None:
    m = monitor()
    for i in range(20):
        observe(m, T0 + i)  # window T0
    observe(m, T0 + 65)  # window T0 + 60; the watermark is 5 s past T0's end
    observe(m, T0 + 30)  # within grace: joins T0
    assert not m.close_due(T0 + 65, "s")
    update = m.close_due(T0 + 70, "s")
    (record,) = update.records
    assert (record.start, record.end, record.stats and record.stats.count) == (T0, T0 + 60, 21)
    assert record.counts.late == 0
    assert record.closed_by == "watermark"
    observe(m, T0 + 59)  # too late: dropped from the statistics, and counted
    m.record_invalid("s", T0 + 10, now=T0 + 71)
    assert m.late_events == 2
    (record,) = m.flush().records
    assert record.start == T0 + 60
    assert record.stats is not None
    assert record.stats.count == 1
    assert record.counts.late == 2
    assert record.closed_by == "flush"


def test_a_silent_streams_window_closes_by_processing_time() -> None:
    m = monitor()
    for i in range(20):
        m.observe(Event("s", T0 + i, {"value": 1.0}), now=T0 + 1000 + i)  # arrives 1000 s late
    # Event time stood still at T0 + 19; processing time moves it on from the last arrival.
    assert not m.close_idle(now=T0 + 1019 + 50.9)
    (record,) = m.close_idle(now=T0 + 1019 + 51).records
    assert record.start == T0
    assert record.closed_by == "idle"
    assert not m.close_idle(now=T0 + 5000)


def test_close_due_touches_only_the_named_stream() -> None:
    m = monitor()
    observe(m, T0 + 1, stream="a")
    observe(m, T0 + 1, stream="b")
    assert [r.stream for r in m.close_due(T0 + 100, "a").records] == ["a"]
    assert [r.stream for r in m.close_due(T0 + 100).records] == ["b"]
    assert not m.close_due(T0 + 100, "unknown")


def test_invalid_events_and_alerts_count_in_their_window() -> None:
    m = monitor()
    for i in range(8):
        observe(m, T0 + i)
    m.record_invalid("s", T0 + 1, now=T0 + 1)
    m.record_invalid("s", T0 + 2, now=T0 + 2)
    m.record_alert("s", T0 + 3, now=T0 + 3)
    m.record_invalid("only-bad", T0 + 3, now=T0 + 3)
    records = {r.stream: r for r in m.flush().records}
    counts = records["s"].counts
    assert (counts.events, counts.invalid, counts.alerts) == (8, 2, 1)
    assert counts.invalid_rate == pytest.approx(0.2)
    assert counts.alert_rate == pytest.approx(1 / 8)
    bad = records["only-bad"]
    assert bad.field is None
    assert bad.stats is None
    assert bad.counts.invalid_rate == 1.0
    assert bad.to_json()["judgement"] == "too_few_events"
