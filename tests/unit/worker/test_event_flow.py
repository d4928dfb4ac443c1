"""EventFlow without Kafka: which events are judged where they sit and which are re-keyed
(and why), invalid ones dead-lettered, readiness waiting for the streams' state, the
judged streams marked for the next snapshot, and the consumer lag recorded."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
from fakes import MemoryStateTopic

from anomalyd.clock import ManualClock
from anomalyd.config import parse_config
from anomalyd.metrics import Metrics
from anomalyd.worker.detection.flow import EventFlow
from anomalyd.worker.detection.runtime import Runtime
from anomalyd.worker.detection.snapshots import SnapshotStore
from anomalyd.worker.kafka.records import default_partition

T0 = 1_700_000_000.0
PARTITIONS = 4
CONFIG = """
model: {mode: rules}
drift: {enabled: false}
rules: [{name: High, type: above, threshold: 500, severity: critical}]
"""


class Flow:
    """An EventFlow wired to lists instead of topics."""

    def __init__(self, events_partitions: int = PARTITIONS) -> None:
        self.runtime = Runtime(parse_config(CONFIG), ManualClock(T0), Metrics())
        self.snapshots = SnapshotStore(self.runtime.engine, MemoryStateTopic(started=True))
        self.snapshots.restored.set()
        self.generation = 0
        self.dead: list[dict[str, Any]] = []
        self.rekeyed: list[dict[str, Any]] = []
        self.alerts: list[bytes] = []

        async def send_alert(key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
            self.alerts.append(key)

        async def send_drift(key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
            return None

        async def send_dead(**kwargs: Any) -> None:
            self.dead.append(kwargs)

        async def send_rekeyed(**kwargs: Any) -> None:
            self.rekeyed.append(kwargs)

        self.runtime.attach(send_alert=send_alert, send_drift=send_drift)
        self.flow = EventFlow(
            self.runtime,
            self.snapshots,
            partitions=PARTITIONS,
            events_partitions=lambda: events_partitions,
            generation=lambda: self.generation,
            highwater=lambda tp: 100,
            partitioner=default_partition,
            send_dead=send_dead,
            send_rekeyed=send_rekeyed,
        )


def tp(partition: int, topic: str = "events") -> Any:
    return SimpleNamespace(topic=topic, partition=partition)


def record(body: Any, key: bytes | None, partition: int, offset: int = 0) -> Any:
    value = body if isinstance(body, bytes) else orjson.dumps(body)
    return SimpleNamespace(
        topic="events", partition=partition, offset=offset, key=key, value=value, timestamp=None
    )


def event(stream: str, value: float = 1.0) -> dict[str, Any]:
    return {"stream": stream, "ts": T0, "value": value}


async def test_an_event_keyed_by_its_stream_in_its_partition_is_judged_where_it_is() -> None:
    f = Flow()
    home = default_partition(b"db", PARTITIONS)
    sends = f.flow.events.judge(tp(home), [record(event("db", 900), b"db", home, 41)])
    await f.flow.events.publish(sends)
    assert f.rekeyed == []
    assert f.alerts == [b"High"]
    assert f.runtime.partition_of("db") == home
    assert f.runtime.metrics.consumer_lag.labels("events", str(home))._value.get() == 58
    assert await f.snapshots.write() == 1  # marked for the next round


async def test_other_events_are_rekeyed_by_stream_and_counted_by_why() -> None:
    f = Flow()
    home = default_partition(b"db", PARTITIONS)
    elsewhere = (home + 1) % PARTITIONS
    batch = [
        record(event("db"), b"db", elsewhere, 0),  # the right key, the wrong partition
        record(event("db"), b"not-the-stream", home, 1),  # the wrong key
        record(event("db"), None, home, 2),  # no key
    ]
    sends = f.flow.events.judge(tp(home), batch[1:])
    await f.flow.events.publish(sends)
    sends = f.flow.events.judge(tp(elsewhere), batch[:1])
    await f.flow.events.publish(sends)

    assert [r["key"] for r in f.rekeyed] == [b"db", b"db", b"db"]
    rekeyed = f.runtime.metrics.rekeyed
    assert rekeyed.labels("key")._value.get() == 2
    assert rekeyed.labels("partition")._value.get() == 1
    assert f.runtime.engine.stream_count == 0  # judged from the by-stream topic, not here


async def test_with_another_partition_count_every_event_is_rekeyed() -> None:
    f = Flow(events_partitions=PARTITIONS + 1)
    home = default_partition(b"db", PARTITIONS)
    await f.flow.events.publish(f.flow.events.judge(tp(home), [record(event("db"), b"db", home)]))
    assert len(f.rekeyed) == 1
    assert f.runtime.metrics.rekeyed.labels("topic")._value.get() == 1


async def test_invalid_events_are_dead_lettered_with_their_reason() -> None:
    f = Flow()
    sends = f.flow.events.judge(tp(0), [record(b"{not json", b"k", 0, 5)])
    await f.flow.events.publish(sends)
    [letter] = f.dead
    headers = dict(letter["headers"])
    assert headers["source"] == b"events/0/5"
    assert headers["reason"].startswith(b"invalid_json")


async def test_by_stream_events_are_judged_in_their_partition() -> None:
    f = Flow()
    sends = f.flow.by_stream.judge(tp(2, "by-stream"), [record(event("db", 900), b"db", 2)])
    await f.flow.by_stream.publish(sends)
    assert f.alerts == [b"High"]
    assert f.runtime.partition_of("db") == 2


async def test_ready_waits_for_the_state_and_refuses_a_batch_from_before_a_rebalance() -> None:
    f = Flow()
    f.snapshots.restored.clear()
    waiting = asyncio.ensure_future(f.flow.events.ready(tp(0)))
    await asyncio.sleep(0)
    assert not waiting.done()  # never judge a stream before its state is back
    f.snapshots.restored.set()
    assert await asyncio.wait_for(waiting, 5) is True

    f.snapshots.restored.clear()
    waiting = asyncio.ensure_future(f.flow.events.ready(tp(0)))
    await asyncio.sleep(0)
    f.generation += 1  # a rebalance came meanwhile
    f.snapshots.restored.set()
    assert await asyncio.wait_for(waiting, 5) is False
