"""What one worker keeps per stream and per key is bounded: streams past
`ingest.max_streams` are evicted (least recently seen, never one whose alert fires), keys
are kept only when they name a stream, and invalid events are logged sampled."""

from __future__ import annotations

from typing import Any

import structlog

from anomalyd.clock import ManualClock
from anomalyd.config import parse_config
from anomalyd.domain import VALUE_FIELD, Event
from anomalyd.metrics import Metrics
from anomalyd.pipeline import Outcome
from anomalyd.worker.detection import runtime as runtime_module
from anomalyd.worker.detection.flow import EventFlow
from anomalyd.worker.detection.runtime import Runtime
from anomalyd.worker.kafka.records import default_partition

T0 = 1_700_000_000.0
CONFIG = """
ingest: {max_streams: 3}
model: {mode: rules}
drift: {enabled: false}
rules: [{name: High, type: above, threshold: 500, severity: critical}]
"""


def judge(runtime: Runtime, stream: str, value: float, at: float) -> Outcome:
    outcome = Outcome()
    runtime.score(Event(stream, at, {VALUE_FIELD: value}), 0, at, at, outcome)
    for alert in outcome.alerts:
        runtime.alerts.add(alert)
    return outcome


def test_streams_past_the_cap_evict_the_least_recently_seen_idle_one() -> None:
    runtime = Runtime(parse_config(CONFIG), ManualClock(T0), Metrics())
    evicted: list[tuple[str, int]] = []
    runtime.on_evict = lambda stream, partition: evicted.append((stream, partition))
    assert judge(runtime, "firing", 900, T0).alerts  # fires: never evicted meanwhile
    for i, stream in enumerate(["a", "b", "a", "c", "d", "e"]):
        judge(runtime, stream, 1, T0 + 1 + i)
    assert runtime.engine.stream_count == 3
    assert sorted(runtime.engine.streams()) == ["d", "e", "firing"]
    assert evicted == [("b", 0), ("a", 0), ("c", 0)]  # "a" was seen after "b"
    assert runtime.metrics.streams_evicted._value.get() == 3


def test_an_evicted_stream_comes_back_fresh() -> None:
    runtime = Runtime(parse_config(CONFIG), ManualClock(T0), Metrics())
    for i, stream in enumerate(["a", "b", "c", "d", "a"]):
        judge(runtime, stream, 1, T0 + i)
    assert "a" in runtime.engine.streams()
    assert runtime.engine.stream_count == 3


def flow() -> EventFlow:
    runtime = Runtime(parse_config(CONFIG), ManualClock(T0), Metrics())
    return EventFlow(
        runtime,
        None,  # type: ignore[arg-type]  # not used by the key check
        partitions=4,
        events_partitions=lambda: 4,
        generation=lambda: 0,
        highwater=lambda tp: None,
        partitioner=default_partition,
        send_dead=None,  # type: ignore[arg-type]
        send_rekeyed=None,  # type: ignore[arg-type]
    )


def test_keys_that_are_not_the_stream_name_are_not_kept() -> None:
    """600 events with unique 512 KiB keys kept 323 MB: every key was remembered."""
    events = flow()
    for i in range(600):
        key = i.to_bytes(4, "big") * (512 * 1024 // 4)
        assert not events._in_place(key, "api", 0)
    assert events._owner == {}
    events._in_place(b"api", "api", 0)
    assert list(events._owner) == [b"api"]


def test_invalid_events_are_logged_sampled_and_counted_in_full(monkeypatch: Any) -> None:
    clock = ManualClock(T0)
    runtime = Runtime(parse_config(CONFIG), clock, Metrics())
    with structlog.testing.capture_logs() as logs:
        for _ in range(1000):
            runtime.decode(b"not json", None)
        clock.advance(runtime_module.REJECTION_LOG_INTERVAL)
        runtime.decode(b"not json", None)
    lines = [line for line in logs if line["event"] == "event_rejected"]
    assert len(lines) == runtime_module.REJECTIONS_LOGGED + 2
    assert lines[runtime_module.REJECTIONS_LOGGED]["count"] == 1
    assert lines[-1]["count"] == 1000 - runtime_module.REJECTIONS_LOGGED
    assert runtime.metrics.invalid_events.labels("invalid_json")._value.get() == 1001
