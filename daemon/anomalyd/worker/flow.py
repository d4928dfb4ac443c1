"""Events from Kafka to verdicts, a fetched batch at a time (`batching.py`).

Each stream must be judged by one worker, from one partition. An event already sits
in its stream's partition when its producer keyed it by the stream name with
Kafka's default partitioner and the events topic is partitioned like the internal
topics (Faust then assigns partition N of both to the same worker): such events are
judged where they are. Any other valid event is re-keyed through the by-stream
topic and judged from there; how many, and why, is counted
(`anomalyd_events_rekeyed_total`). Invalid events go to the dead-letter topic with
their reason.

The batch consumer (`batching.py`) calls `judge` on a chunk of records and acks
it in the same step, then awaits `publish`: the chunk's alerts, drift windows, dead
letters and re-keyed events.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka.partitioner import murmur2
from faust.types import TP

from anomalyd.domain import Event
from anomalyd.pipeline import Outcome
from anomalyd.worker.batching import BatchHandler
from anomalyd.worker.runtime import Rejected, Runtime
from anomalyd.worker.snapshots import SnapshotStore


@dataclass(slots=True)
class _Sends:
    """What a batch sends once it has been judged."""

    outcome: Outcome = field(default_factory=Outcome)
    dead: list[tuple[Any, Rejected]] = field(default_factory=list)
    rekeyed: list[tuple[Event, Any]] = field(default_factory=list)


class EventFlow:
    def __init__(
        self,
        runtime: Runtime,
        snapshots: SnapshotStore,
        *,
        partitions: int,
        events_partitions: Callable[[], int | None],
        generation: Callable[[], int],
        highwater: Callable[[TP], int | None],
        send_dead: Callable[..., Any],
        send_rekeyed: Callable[..., Any],
    ) -> None:
        self._runtime = runtime
        self._snapshots = snapshots
        self._partitions = partitions
        self._events_partitions = events_partitions
        self._generation = generation
        self._highwater = highwater
        self._send_dead = send_dead
        self._send_rekeyed = send_rekeyed
        self._owner: dict[bytes, int] = {}  # key -> partition, Kafka's default partitioner

    @property
    def events(self) -> BatchHandler:
        """The events topic: validate, judge what sits in its stream's partition."""
        return _Handler(self, self._judge_events)

    @property
    def by_stream(self) -> BatchHandler:
        """The by-stream topic: events validated at ingest, keyed by stream."""
        return _Handler(self, self._judge_by_stream)

    async def ready(self, tp: TP) -> bool:
        """Never judge a stream before its state is back. False when a rebalance came
        meanwhile: the batch may be another worker's now."""
        if self._snapshots.restored.is_set():
            return True
        generation = self._generation()
        await self._snapshots.restored.wait()
        return self._generation() == generation

    def _judge_events(self, tp: TP, records: Sequence[Any]) -> _Sends:
        runtime, sends, partition = self._runtime, _Sends(), tp.partition
        runtime.metrics.events.inc(len(records))
        in_place = self._events_partitions() == self._partitions
        now = runtime.clock.now()
        for record in records:
            broker_ts = _seconds(record.timestamp)
            event = runtime.decode(record.value, broker_ts)
            if isinstance(event, Rejected):
                sends.dead.append((record, event))
            elif in_place and self._in_place(record.key, event.stream, partition):
                self._score(event, partition, broker_ts, now, sends.outcome)
            else:
                sends.rekeyed.append((event, record))
        if sends.rekeyed:
            self._count_rekeyed(sends.rekeyed, in_place)
        self._record_lag(tp, records[-1].offset)
        return sends

    def _judge_by_stream(self, tp: TP, records: Sequence[Any]) -> _Sends:
        runtime, sends, partition = self._runtime, _Sends(), tp.partition
        now = runtime.clock.now()
        for record in records:
            broker_ts = _seconds(record.timestamp)
            event = runtime.decode(record.value, broker_ts)
            if isinstance(event, Rejected):  # validated once already: only a bug lands here
                raise RuntimeError(f"an event passed ingest but not detect: {event.detail}")
            self._score(event, partition, broker_ts, now, sends.outcome)
        self._record_lag(tp, records[-1].offset)
        return sends

    def _score(
        self, event: Event, partition: int, broker_ts: float | None, now: float, into: Outcome
    ) -> None:
        self._runtime.score(event, partition, broker_ts, now, into)
        self._snapshots.mark(event.stream, partition)

    def _record_lag(self, tp: TP, last_offset: int) -> None:
        end = self._highwater(tp)
        if end is not None:
            lag = max(0, end - last_offset - 1)
            self._runtime.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(lag)

    def _in_place(self, key: bytes | None, stream: str, partition: int) -> bool:
        if key is None:
            return False
        owner = self._owner.get(key)
        if owner is None:
            if len(self._owner) >= 1_000_000:  # bounded: keys are producer-controlled
                self._owner.clear()
            owner = self._owner[key] = (murmur2(key) & 0x7FFFFFFF) % self._partitions
        return owner == partition and key == stream.encode()

    def _count_rekeyed(self, rekeyed: list[tuple[Event, Any]], in_place: bool) -> None:
        counter = self._runtime.metrics.rekeyed
        if not in_place:
            counter.labels("topic").inc(len(rekeyed))
            return
        for event, record in rekeyed:
            wrong_key = record.key is None or record.key != event.stream.encode()
            counter.labels("key" if wrong_key else "partition").inc()

    async def publish(self, sends: _Sends) -> None:
        for record, rejected in sends.dead:
            await self._send_dead(
                key=record.key,
                value=record.value,
                headers=[
                    ("reason", f"{rejected.code}: {rejected.detail}".encode()),
                    ("source", f"{record.topic}/{record.partition}/{record.offset}".encode()),
                ],
            )
        for event, record in sends.rekeyed:
            await self._send_rekeyed(
                key=event.stream.encode(), value=record.value, timestamp=_seconds(record.timestamp)
            )
        await self._runtime.publish(sends.outcome)


def _seconds(timestamp_ms: int | None) -> float | None:
    return None if timestamp_ms is None else timestamp_ms / 1000.0


class _Handler:
    """One topic's `BatchHandler`: the flow's readiness and publishing, its own judging."""

    def __init__(self, flow: EventFlow, judge: Callable[[TP, Sequence[Any]], _Sends]) -> None:
        self._flow = flow
        self.judge = judge

    async def ready(self, tp: TP) -> bool:
        return await self._flow.ready(tp)

    async def publish(self, judged: _Sends) -> None:
        await self._flow.publish(judged)
