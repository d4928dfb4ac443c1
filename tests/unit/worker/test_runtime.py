"""Runtime without Kafka: when it serves, what it publishes where (alerts keyed by
alertname into the alert index, drift windows into the history), decoding, and the
partitions it gives up."""

from __future__ import annotations

import orjson

from anomalyd.clock import ManualClock
from anomalyd.config import parse_config
from anomalyd.domain import VALUE_FIELD, Event
from anomalyd.metrics import Metrics
from anomalyd.pipeline import Outcome
from anomalyd.worker.detection.runtime import Rejected, Runtime

T0 = 1_700_000_000.0
CONFIG = """
model: {mode: rules}
drift: {enabled: false}
rules: [{name: High, type: above, threshold: 500, severity: critical}]
"""

Sent = list[tuple[bytes, bytes, list[tuple[str, bytes]]]]


def attached() -> tuple[Runtime, Sent, Sent]:
    runtime = Runtime(parse_config(CONFIG), ManualClock(T0), Metrics())
    alerts: Sent = []
    drift: Sent = []

    async def send_alert(key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        alerts.append((key, value, headers))

    async def send_drift(key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        drift.append((key, value, headers))

    runtime.attach(send_alert=send_alert, send_drift=send_drift)
    return runtime, alerts, drift


def test_it_serves_only_when_ready_reachable_and_alive() -> None:
    runtime, _, _ = attached()
    assert not runtime.serving  # state not restored yet
    runtime.set_ready(True)
    assert runtime.serving
    assert runtime.metrics.ready._value.get() == 1
    runtime.set_broker_reachable(False)
    assert not runtime.serving
    assert runtime.metrics.ready._value.get() == 0
    runtime.set_broker_reachable(True)
    runtime.set_crashed(RuntimeError("the message may quote an event"))
    assert not runtime.serving
    assert runtime.crashed_with == "RuntimeError"  # the type only


async def test_alerts_go_to_the_alerts_topic_keyed_by_alertname_and_into_the_index() -> None:
    runtime, alerts, _ = attached()
    outcome = Outcome()
    runtime.score(Event("db", T0, {VALUE_FIELD: 900.0}), 3, T0, T0, outcome)
    assert len(outcome.alerts) == 1  # judged, not sent yet
    assert alerts == []

    await runtime.publish(outcome)

    [(key, value, headers)] = alerts
    assert key == b"High"
    assert orjson.loads(value)["labels"]["stream"] == "db"
    assert headers == []
    fingerprint = outcome.alerts[0].fingerprint
    assert runtime.alerts.get(fingerprint) == outcome.alerts[0]
    assert runtime.partition_of("db") == 3


def test_decode_names_what_is_wrong_and_counts_it() -> None:
    runtime, _, _ = attached()
    event = runtime.decode(orjson.dumps({"stream": "s", "ts": T0, "value": 1}), None)
    assert isinstance(event, Event)
    rejected = runtime.decode(b"not json", None)
    assert isinstance(rejected, Rejected)
    assert runtime.metrics.invalid_events.labels(rejected.code)._value.get() == 1


def test_given_up_partitions_take_their_streams_with_them() -> None:
    runtime, _, _ = attached()
    for stream, partition in [("a", 0), ("b", 1), ("c", 1)]:
        runtime.score(Event(stream, T0, {VALUE_FIELD: 1.0}), partition, T0, T0, Outcome())
    assert sorted(runtime.streams_in([1])) == ["b", "c"]
    runtime.forget_partitions([1])
    assert sorted(runtime.engine.streams()) == ["a"]
    assert runtime.partition_of("b") is None
    assert runtime.metrics.streams._value.get() == 1


def test_the_gauges_are_refreshed_for_a_scrape() -> None:
    runtime, _, _ = attached()
    runtime.score(Event("a", T0, {VALUE_FIELD: 1.0}), 0, T0, T0, Outcome())
    runtime.refresh_gauges()
    assert runtime.metrics.streams._value.get() == 1
