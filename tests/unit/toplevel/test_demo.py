"""The demo traffic generator: deterministic, well-formed, anomalies on schedule."""

from __future__ import annotations

import itertools
import math
import random
import re
import statistics
from typing import Any

import pytest

from anomalyd.demo import (
    ANOMALY_DURATION_S,
    ANOMALY_ROTATION,
    DEFAULT_STREAMS,
    Anomaly,
    AnomalyKind,
    DemoStream,
    DemoTick,
    daily_shape,
    demo_events,
    demo_ticks,
    expected_value,
)
from anomalyd.domain import parse_time

START = 1_795_000_000.0  # 2026-11-18T09:46:40Z; any start works
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
BY_NAME = {s.name: s for s in DEFAULT_STREAMS}


def take_ticks(seconds: float, interval_s: float = 1.0, seed: int = 7, **kw: Any) -> list[DemoTick]:
    ticks = demo_ticks(DEFAULT_STREAMS, START, interval_s, random.Random(seed), **kw)
    return list(itertools.islice(ticks, int(seconds / interval_s)))


def injected(ticks: list[DemoTick]) -> list[Anomaly]:
    return [a for t in ticks for a in t.injected]


def test_same_seed_same_events() -> None:
    def first(seed: int) -> list[dict[str, Any]]:
        events = demo_events(DEFAULT_STREAMS, START, 0.5, random.Random(seed))
        return list(itertools.islice(events, 2_000))

    assert first(3) == first(3)
    assert first(3) != first(4)


def test_every_event_matches_the_input_schema() -> None:
    events = itertools.islice(demo_events(DEFAULT_STREAMS, START, 0.25, random.Random(1)), 5_000)
    for event in events:
        assert set(event) == {"stream", "ts", "value", "labels"}
        assert event["stream"] in BY_NAME
        assert ISO_UTC.match(event["ts"]), event["ts"]
        assert parse_time(event["ts"]) >= START
        assert isinstance(event["value"], float)
        assert math.isfinite(event["value"])
        assert event["value"] >= 0.0
        assert event["labels"] == BY_NAME[event["stream"]].labels
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in event["labels"].items())


def test_ticks_are_evenly_spaced_and_cover_every_stream_when_calm() -> None:
    ticks = take_ticks(50, interval_s=0.5)  # before the first anomaly at +60 s
    assert [t.ts - START for t in ticks] == [i * 0.5 for i in range(100)]
    for tick in ticks:
        assert [e["stream"] for e in tick.events] == [s.name for s in DEFAULT_STREAMS]
        assert all(parse_time(e["ts"]) == pytest.approx(tick.ts, abs=1e-3) for e in tick.events)


def test_anomalies_come_every_interval_in_rotation() -> None:
    anomalies = injected(take_ticks(10 * 60))
    assert [a.start_ts - START for a in anomalies] == [60.0 * i for i in range(1, 10)]
    assert [a.kind for a in anomalies] == [ANOMALY_ROTATION[i % 3] for i in range(9)]
    for anomaly in anomalies:
        assert anomaly.end_ts - anomaly.start_ts == ANOMALY_DURATION_S[anomaly.kind]
    assert ANOMALY_DURATION_S[AnomalyKind.STALL] > 10.0  # outlasts an absence rule `for: 10s`


def test_anomaly_cadence_follows_the_parameter() -> None:
    anomalies = injected(take_ticks(300, interval_s=0.5, anomaly_every_s=30.0))
    assert [a.start_ts - START for a in anomalies] == [30.0 * i for i in range(1, 10)]


def values_during(ticks: list[DemoTick], anomaly: Anomaly) -> list[tuple[float, float]]:
    """(value, expected) for the anomaly's stream while it lasts."""
    return [
        (e["value"], expected_value(BY_NAME[e["stream"]], t.ts))
        for t in ticks
        if anomaly.start_ts <= t.ts < anomaly.end_ts
        for e in t.events
        if e["stream"] == anomaly.stream
    ]


def test_spikes_dips_and_stalls_show_in_the_values() -> None:
    ticks = take_ticks(12 * 60, seed=11)
    anomalies = injected(ticks)
    assert {a.kind for a in anomalies} == set(AnomalyKind)
    for anomaly in anomalies:
        seen = values_during(ticks, anomaly)
        if anomaly.kind is AnomalyKind.STALL:
            assert seen == []
            continue
        assert len(seen) == 3  # ~3 s at one event per second
        for value, expected in seen:
            if anomaly.kind is AnomalyKind.SPIKE:
                assert value > 3.0 * expected
            else:
                assert value < 0.3 * expected


def test_a_stalled_stream_resumes_and_the_others_keep_going() -> None:
    ticks = take_ticks(4 * 60)
    stall = next(a for a in injected(ticks) if a.kind is AnomalyKind.STALL)
    for tick in ticks:
        names = {e["stream"] for e in tick.events}
        stalled = stall.start_ts <= tick.ts < stall.end_ts
        assert (stall.stream not in names) == stalled
        assert len(names) == len(DEFAULT_STREAMS) - int(stalled)


def test_values_stay_near_expected_outside_anomalies() -> None:
    ticks = take_ticks(10 * 60)
    anomalies = injected(ticks)
    for tick in ticks:
        for event in tick.events:
            if any(a.covers(event["stream"], tick.ts) for a in anomalies):
                continue
            stream = BY_NAME[event["stream"]]
            deviation = abs(event["value"] - expected_value(stream, tick.ts))
            assert deviation < 6.0 * stream.noise


def test_daily_shape_peaks_in_the_afternoon_utc() -> None:
    midnight = 1_795_046_400.0  # 2026-11-19T00:00:00Z
    assert daily_shape(midnight + 14 * 3600) == pytest.approx(1.0)
    assert daily_shape(midnight + 2 * 3600) == pytest.approx(-1.0)
    assert daily_shape(midnight + 14 * 3600 + 86_400) == pytest.approx(1.0)
    assert all(-1.0 <= daily_shape(midnight + h * 900) <= 1.0 for h in range(96))


def test_a_day_of_values_follows_the_daily_cycle() -> None:
    stream = DemoStream("cpu", base=50.0, daily_amplitude=20.0, noise=2.0, labels={})
    midnight = 1_795_046_400.0
    events = demo_events([stream], midnight, 60.0, random.Random(5), anomaly_every_s=1e9)
    day = list(itertools.islice(events, 24 * 60))
    by_hour = [statistics.fmean(e["value"] for e in day[h * 60 : (h + 1) * 60]) for h in range(24)]
    assert max(range(24), key=by_hour.__getitem__) in (13, 14)
    assert min(range(24), key=by_hour.__getitem__) in (1, 2)
    assert by_hour[14] - by_hour[2] == pytest.approx(40.0, abs=3.0)


@pytest.mark.parametrize(
    ("streams", "interval_s", "every_s"),
    [((), 1.0, 60.0), (DEFAULT_STREAMS, 0.0, 60.0), (DEFAULT_STREAMS, 1.0, 0.0)],
)
def test_bad_parameters_are_rejected(
    streams: tuple[DemoStream, ...], interval_s: float, every_s: float
) -> None:
    with pytest.raises(ValueError, match=r"must|needs"):
        next(demo_ticks(streams, START, interval_s, random.Random(0), every_s))
