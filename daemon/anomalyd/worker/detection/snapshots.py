"""Per-stream engine state in Kafka, so a restart or a rebalance resumes instead of
relearning: a compacted topic keyed by stream, partitioned like the by-stream topic,
so a partition's state moves with its events.

- Write: before every commit of the events' offsets (and at shutdown, when the app
  commits last), the streams that changed since the last round, batched; then one
  marker record alone per partition written. The saved state is thus always the
  state at the committed offsets, which a crash or a rebalance replays from. On a
  revocation the given-up streams' newer changes are dropped, not written: Faust
  drops their uncommitted acks too. The marker keeps the partition's *last* batch a
  single record, because the embedded broker answers ListOffsets(latest) wrongly
  after a multi-record batch (DESIGN.md) and restoring reads up to that offset.
- Read: when partitions are assigned, before their events flow, each assigned
  partition is read from the beginning to its end; the engine resumes each stream
  from its newest snapshot.
- Format: versioned JSON of plain fields (`decide.state_codec`), read back as data
  into objects built from the current config: nothing in a record is run. A record
  the engine cannot read (another version, malformed, too large) is refused, the
  stream starts afresh, and the round logs it once (`state_snapshots_refused`). The
  pickles of version 1 are among those: never unpickled.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from mode import Service

from anomalyd.decide import Engine
from anomalyd.decide.state_codec import PICKLE_FORMAT
from anomalyd.worker.kafka.admin import wait_for_broker
from anomalyd.worker.kafka.statelog import caught_up, ensure_compacted

_log = structlog.get_logger(__name__)

#: A key no stream can have (stream names start with a letter, digit or underscore).
MARKER = b"\x00marker"


class SnapshotStore(Service):
    def __init__(
        self,
        engine: Engine,
        bootstrap: Sequence[str],
        topic: str,
        partitions: int,
        read_timeout: float = 60.0,
    ) -> None:
        super().__init__()
        self._engine = engine
        self.topic = topic
        self._bootstrap = list(bootstrap)
        self._partitions = partitions
        self._read_timeout = read_timeout
        self._producer: AIOKafkaProducer | None = None
        self._dirty: dict[str, int] = {}  # stream -> partition
        self._evicted: set[str] = set()  # dirty streams whose snapshot is to be deleted
        self._writing = asyncio.Lock()
        #: Set once the assigned partitions' state is back; detection waits for it.
        self.restored = asyncio.Event()

    async def on_start(self) -> None:
        await wait_for_broker(self._bootstrap)
        await ensure_compacted(self._bootstrap, [self.topic], self._partitions)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap, enable_idempotence=False
        )
        await self._producer.start()

    async def on_stop(self) -> None:
        """After the app stopped (its last commit wrote the state): close the producer."""
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    def discard(self, streams: Iterable[str]) -> None:
        """Streams given up: their changes since the last commit are not to be written."""
        for stream in streams:
            self._dirty.pop(stream, None)
            self._evicted.discard(stream)

    def evict(self, stream: str, partition: int) -> None:
        """The stream was evicted (`ingest.max_streams`): delete its snapshot in the next
        round, so a restart does not bring it back either."""
        self._dirty[stream] = partition
        self._evicted.add(stream)

    def mark(self, stream: str, partition: int) -> None:
        """The stream changed: write it in the next round."""
        self._dirty[stream] = partition

    async def write(self) -> int:
        """Write the dirty streams (before an offset commit); how many were written.
        Nothing once stopped: the app's last commit came before `on_stop`.

        One write at a time (Faust's commit timer, its count-based commits and a
        rebalance may commit at once): a caller returns once what was dirty when it
        asked is durable, even if another write had taken some of those streams."""
        async with self._writing:
            producer = self._producer
            if producer is None:
                return 0
            chosen = list(self._dirty)
            touched: set[int] = set()
            for stream in chosen:
                partition = self._dirty.pop(stream)
                blob = self._engine.snapshot(stream)
                evicted = stream in self._evicted
                self._evicted.discard(stream)
                if blob is None and not evicted:  # forgotten since (its partition was revoked)
                    continue
                await producer.send(self.topic, blob, key=stream.encode(), partition=partition)
                touched.add(partition)
            await producer.flush()
            for partition in sorted(touched):
                await producer.send_and_wait(self.topic, None, key=MARKER, partition=partition)
            if chosen:
                _log.debug(
                    "state_snapshot_written", streams=len(chosen), partitions=sorted(touched)
                )
            return len(chosen)

    async def restore(self, partitions: Iterable[int]) -> int:
        """Resume the engine's streams of these partitions from their newest snapshots."""
        tps = [TopicPartition(self.topic, p) for p in sorted(set(partitions))]
        if not tps:
            return 0
        started = time.monotonic()
        latest = await self._read(tps)
        refused = {
            stream: reason
            for stream, blob in latest.items()
            if (reason := self._engine.refusal(stream, blob)) is not None
        }
        restored = len(latest) - len(refused)
        if refused:
            _log_refused(refused, latest)
        _log.info(
            "state_restored",
            streams=restored,
            partitions=[tp.partition for tp in tps],
            seconds=round(time.monotonic() - started, 3),
        )
        return restored

    async def _read(self, tps: list[TopicPartition]) -> dict[str, bytes]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        try:
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
            return await self._read_to(consumer, ends)
        finally:
            await consumer.stop()

    async def _read_to(
        self, consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]
    ) -> dict[str, bytes]:
        latest: dict[str, bytes] = {}
        deadline = time.monotonic() + self._read_timeout
        while not await caught_up(consumer, ends):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"state topic {self.topic} not read to its end in {self._read_timeout:g}s"
                )
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    if record.key is None or record.key == MARKER:
                        continue
                    stream = record.key.decode()
                    if record.value is None:
                        latest.pop(stream, None)
                    else:
                        latest[stream] = record.value
        return latest


def _log_refused(refused: dict[str, str], blobs: dict[str, bytes]) -> None:
    """Once per round: those streams start afresh. One example, cut short: a record's
    text is not ours and could be long."""
    stream, reason = next(iter(refused.items()))
    _log.warning(
        "state_snapshots_refused",
        streams=len(refused),
        old_format=sum(blobs[s].startswith(PICKLE_FORMAT) for s in refused),
        example_stream=stream[:200],
        example_reason=reason[:200],
    )
