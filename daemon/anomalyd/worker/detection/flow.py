"""Events from Kafka to verdicts, a fetched batch at a time (`kafka/batching.py`).

Each stream must be judged by one worker, from one partition. An event already sits
in its stream's partition when its producer keyed it by the stream name with
Kafka's default partitioner and the events topic is partitioned like the internal
topics (Faust then assigns partition N of both to the same worker): such events are
judged where they are. Any other valid event is re-keyed through the by-stream
topic and judged from there; how many, and why, is counted
(`anomalyd_events_rekeyed_total`). Invalid events go to the dead-letter topic with
their reason.

One record never stops the worker: whatever judging or sending one record raises is
confined to it. It is dead-lettered with its reason (cut to fit a request if it is too
large to send whole: `kafka/deadletter.py`), counted in `anomalyd_event_errors_total`, and
the records behind it are judged. Only a failure of the broker or the connection is
raised (the batch is then replayed after a restart).

The batch consumer (`kafka/batching.py`) calls `judge` on a chunk of records and acks
it in the same step, then awaits `publish`: the chunk's alerts, drift windows, dead
letters and re-keyed events.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
import structlog

from anomalyd.domain import Event
from anomalyd.pipeline import Outcome
from anomalyd.worker.detection.runtime import Rejected, Runtime
from anomalyd.worker.detection.snapshots import SnapshotStore
from anomalyd.worker.kafka.batching import BatchHandler
from anomalyd.worker.kafka.deadletter import (
    DeadLetter,
    coordinates_only,
    dead_letter,
    record_at_fault,
)

_log = structlog.get_logger(__name__)

#: The longest key that can be a stream name (200 ASCII characters): a longer one is
#: never looked at further, nor kept.
MAX_STREAM_KEY = 200
#: Keys whose partition is remembered (stream names only, so bounded in bytes too).
_OWNERS_KEPT = 100_000


class Partition(Protocol):
    """A topic's partition, as the consumer names it (Faust's `TP`)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...


#: The partition Kafka's default partitioner gives a key, among n (`kafka.keys`).
Partitioner = Callable[[bytes, int], int]


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
        highwater: Callable[[Partition], int | None],
        partitioner: Partitioner,
        send_dead: Callable[..., Any],
        send_rekeyed: Callable[..., Any],
        max_request_size: int = 1_048_576,
    ) -> None:
        self._runtime = runtime
        self._snapshots = snapshots
        self._partitions = partitions
        self._events_partitions = events_partitions
        self._generation = generation
        self._highwater = highwater
        self._partitioner = partitioner
        self._send_dead = send_dead
        self._send_rekeyed = send_rekeyed
        self._max_request_size = max_request_size
        self._owner: dict[bytes, int] = {}  # key -> partition, Kafka's default partitioner

    @property
    def events(self) -> BatchHandler:
        """The events topic: validate, judge what sits in its stream's partition."""
        return _Handler(self, self._judge_events)

    @property
    def by_stream(self) -> BatchHandler:
        """The by-stream topic: events validated at ingest, keyed by stream."""
        return _Handler(self, self._judge_by_stream)

    async def ready(self, tp: Partition) -> bool:
        """Never judge a stream before its state is back. False when a rebalance came
        meanwhile: the batch may be another worker's now."""
        if self._snapshots.restored.is_set():
            return True
        generation = self._generation()
        await self._snapshots.restored.wait()
        return self._generation() == generation

    def _judge_events(self, tp: Partition, records: Sequence[Any]) -> _Sends:
        runtime, sends = self._runtime, _Sends()
        runtime.metrics.events.inc(len(records))
        in_place = self._events_partitions() == self._partitions
        now = runtime.clock.now()
        for record in records:
            try:
                self._judge_event(record, tp.partition, in_place, now, sends)
            except Exception as error:  # noqa: BLE001 - confined to the record: dead-lettered
                self._judge_failed(record, error, sends)
        if sends.rekeyed:
            self._count_rekeyed(sends.rekeyed, in_place)
        self._record_lag(tp, records[-1].offset)
        return sends

    def _judge_event(
        self, record: Any, partition: int, in_place: bool, now: float, sends: _Sends
    ) -> None:
        broker_ts = _seconds(record.timestamp)
        event = self._runtime.decode(record.value, broker_ts, now)
        if isinstance(event, Rejected):
            sends.dead.append((record, event))
        elif in_place and self._in_place(record.key, event.stream, partition):
            self._score(event, partition, broker_ts, now, sends.outcome)
        else:
            sends.rekeyed.append((event, record))

    def _judge_by_stream(self, tp: Partition, records: Sequence[Any]) -> _Sends:
        sends, partition = _Sends(), tp.partition
        now = self._runtime.clock.now()
        for record in records:
            try:
                self._judge_keyed(record, partition, now, sends)
            except Exception as error:  # noqa: BLE001 - confined to the record: dead-lettered
                self._judge_failed(record, error, sends)
        self._record_lag(tp, records[-1].offset)
        return sends

    def _judge_keyed(self, record: Any, partition: int, now: float, sends: _Sends) -> None:
        broker_ts = _seconds(record.timestamp)
        # No future check here: the event passed it at ingest, and the clock only moves on.
        event = self._runtime.decode(record.value, broker_ts)
        if isinstance(event, Rejected):
            # Validated at ingest already: someone else wrote this to the internal topic.
            self._count_error("invalid_internal", record, event.detail)
            sends.dead.append(
                (record, Rejected("invalid_internal", f"{event.code}: {event.detail}"))
            )
            return
        self._score(event, partition, broker_ts, now, sends.outcome)

    def _judge_failed(self, record: Any, error: Exception, sends: _Sends) -> None:
        self._count_error("judge_error", record, repr(error), error)
        sends.dead.append((record, Rejected("judge_error", repr(error))))

    def _count_error(
        self, reason: str, record: Any, detail: str, error: BaseException | None = None
    ) -> None:
        self._runtime.metrics.event_errors.labels(reason).inc()
        _log.error(
            "event_failed",
            reason=reason,
            detail=detail[:500],
            source=f"{record.topic}/{record.partition}/{record.offset}",
            exc_info=error,
        )

    def _score(
        self, event: Event, partition: int, broker_ts: float | None, now: float, into: Outcome
    ) -> None:
        first_alert = len(into.alerts)
        self._runtime.score(event, partition, broker_ts, now, into)
        self._snapshots.mark(event.stream, partition)
        for alert in into.alerts[first_alert:]:
            # Encoded now, so an alert that cannot be (a date out of range) fails its own
            # event here, not the publishing of the whole batch.
            orjson.dumps(alert.to_json())

    def _record_lag(self, tp: Partition, last_offset: int) -> None:
        end = self._highwater(tp)
        if end is not None:
            lag = max(0, end - last_offset - 1)
            self._runtime.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(lag)

    def _in_place(self, key: bytes | None, stream: str, partition: int) -> bool:
        # Keys are producer-controlled: only a key that is the stream's name is looked
        # at further and kept, so what is kept is bounded in count and in bytes.
        if key is None or len(key) > MAX_STREAM_KEY or key != stream.encode():
            return False
        owner = self._owner.get(key)
        if owner is None:
            if len(self._owner) >= _OWNERS_KEPT:
                self._owner.clear()
            owner = self._owner[key] = self._partitioner(key, self._partitions)
        return owner == partition

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
            await self._dead_letter(record, rejected)
        for event, record in sends.rekeyed:
            try:
                await self._send_rekeyed(
                    key=event.stream.encode(),
                    value=record.value,
                    timestamp=_seconds(record.timestamp),
                )
            except Exception as error:
                if not record_at_fault(error):
                    raise
                self._count_error("unforwardable", record, repr(error), error)
                await self._dead_letter(record, Rejected("unforwardable", repr(error)))
        await self._runtime.publish(sends.outcome)

    async def _dead_letter(self, record: Any, rejected: Rejected) -> None:
        """The record to the dead-letter topic whole, or cut to fit, or at least its
        coordinates; never an exception for the record's sake."""
        letter = dead_letter(record, rejected.code, rejected.detail, self._max_request_size)
        if letter.truncated:
            self._runtime.metrics.event_errors.labels("dead_letter_truncated").inc()
        try:
            await self._send_letter(letter)
            return
        except Exception as error:
            if not record_at_fault(error):
                raise
            self._count_error("dead_letter_failed", record, repr(error), error)
        try:
            await self._send_letter(coordinates_only(record, rejected.code, rejected.detail))
        except Exception as error:
            if not record_at_fault(error):
                raise
            self._count_error("dead_letter_lost", record, repr(error), error)

    async def _send_letter(self, letter: DeadLetter) -> None:
        await self._send_dead(key=letter.key, value=letter.value, headers=letter.headers)


def _seconds(timestamp_ms: int | None) -> float | None:
    return None if timestamp_ms is None else timestamp_ms / 1000.0


Judge = Callable[[Partition, Sequence[Any]], _Sends]


class _Handler:
    """One topic's `BatchHandler`: the flow's readiness and publishing, its own judging."""

    def __init__(
        self, flow: EventFlow, judge: Callable[[Partition, Sequence[Any]], _Sends]
    ) -> None:
        self._flow = flow
        self.judge = judge

    async def ready(self, tp: Partition) -> bool:
        return await self._flow.ready(tp)

    async def publish(self, judged: _Sends) -> None:
        await self._flow.publish(judged)
