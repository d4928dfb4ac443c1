"""Events from Kafka to verdicts, a fetched batch at a time (`batching.py`).

Each stream must be judged by one worker, from one partition. An event already sits
in its stream's partition when its producer keyed it by the stream name with
Kafka's default partitioner and the events topic is partitioned like the internal
topics (Faust then assigns partition N of both to the same worker): such events are
judged where they are. Any other valid event is re-keyed through the by-stream
topic and judged from there; how many, and why, is counted
(`anomalyd_events_rekeyed_total`). Invalid events go to the dead-letter topic with
their reason.

A chunk of a batch is judged without yielding to the event loop, so a rebalance
(which runs between awaits) never sees half a chunk; its alerts, drift windows,
dead letters and re-keyed events are sent after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka.partitioner import murmur2
from faust.types import TP

from anomalyd.domain import Event
from anomalyd.pipeline import Outcome
from anomalyd.worker.runtime import Rejected, Runtime
from anomalyd.worker.snapshots import SnapshotStore

#: Records judged between two yields to the event loop (~20 ms of work).
CHUNK = 1000


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

    async def on_events(self, tp: TP, records: Sequence[Any]) -> None:
        """The events topic: validate, judge what sits in its stream's partition."""
        self._runtime.metrics.events.inc(len(records))
        await self._in_chunks(tp, records, self._judge_events)

    async def on_by_stream(self, tp: TP, records: Sequence[Any]) -> None:
        """The by-stream topic: events validated at ingest, keyed by stream."""
        await self._in_chunks(tp, records, self._judge_by_stream)

    async def _in_chunks(
        self, tp: TP, records: Sequence[Any], judge: Callable[[int, Sequence[Any]], _Sends]
    ) -> None:
        """Judge a fetched batch (tens of thousands of records when a backlog is read) a
        chunk at a time, yielding to the event loop in between, so HTTP, timers and a
        rebalance wait for a chunk, not a batch. After a rebalance the rest is left
        unacked, for the partition's owner to read again."""
        generation = self._generation()
        if not await self._snapshots_restored(generation):
            return
        for start in range(0, len(records), CHUNK):
            if self._generation() != generation:
                return
            await self._send(judge(tp.partition, records[start : start + CHUNK]))
            await asyncio.sleep(0)
        self._record_lag(tp, records[-1].offset)

    def _record_lag(self, tp: TP, last_offset: int) -> None:
        end = self._highwater(tp)
        if end is not None:
            lag = max(0, end - last_offset - 1)
            self._runtime.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(lag)

    def _judge_events(self, partition: int, records: Sequence[Any]) -> _Sends:
        runtime, sends = self._runtime, _Sends()
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
        return sends

    def _judge_by_stream(self, partition: int, records: Sequence[Any]) -> _Sends:
        runtime, sends = self._runtime, _Sends()
        now = runtime.clock.now()
        for record in records:
            broker_ts = _seconds(record.timestamp)
            event = runtime.decode(record.value, broker_ts)
            if isinstance(event, Rejected):  # validated once already: only a bug lands here
                raise RuntimeError(f"an event passed ingest but not detect: {event.detail}")
            self._score(event, partition, broker_ts, now, sends.outcome)
        return sends

    def _score(
        self, event: Event, partition: int, broker_ts: float | None, now: float, into: Outcome
    ) -> None:
        self._runtime.score(event, partition, broker_ts, now, into)
        self._snapshots.mark(event.stream, partition)

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

    async def _snapshots_restored(self, generation: int) -> bool:
        """Never judge a stream before its state is back. False when a rebalance came
        meanwhile: the batch may be another worker's now, and is left unacked."""
        if not self._snapshots.restored.is_set():
            await self._snapshots.restored.wait()
        return self._generation() == generation

    async def _send(self, sends: _Sends) -> None:
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
