"""The streams' state topic as Kafka sees it: a compacted topic keyed by stream and
partitioned like the by-stream topic. Records are written to the partition given, and a
partition is read back from its beginning to its end (the newest value per key; a
deletion removes the key). What the records mean is `detection/snapshots.py`'s.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from anomalyd.worker.kafka.admin import wait_for_broker
from anomalyd.worker.kafka.statelog import caught_up, ensure_compacted


class StateTopic:
    def __init__(
        self, bootstrap: Sequence[str], topic: str, partitions: int, read_timeout: float = 60.0
    ) -> None:
        self.topic = topic
        self._bootstrap = list(bootstrap)
        self._partitions = partitions
        self._read_timeout = read_timeout
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        await wait_for_broker(self._bootstrap)
        await ensure_compacted(self._bootstrap, [self.topic], self._partitions)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap, enable_idempotence=False
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    @property
    def writable(self) -> bool:
        """Started and not stopped."""
        return self._producer is not None

    async def send(self, key: bytes, value: bytes | None, partition: int) -> None:
        """Queue a record (batched with the next ones; `flush` waits for them)."""
        await self._require_producer().send(self.topic, value, key=key, partition=partition)

    async def flush(self) -> None:
        await self._require_producer().flush()

    async def send_alone(self, key: bytes, value: bytes | None, partition: int) -> None:
        """Write one record in a request of its own, and wait for it."""
        producer = self._require_producer()
        await producer.send_and_wait(self.topic, value, key=key, partition=partition)

    async def read(self, partitions: Sequence[int], skip: bytes) -> dict[bytes, bytes]:
        """Each key's newest value in these partitions, read from their beginning to their
        end (`read_timeout` at most); keys deleted since and the key `skip` left out."""
        tps = [TopicPartition(self.topic, p) for p in partitions]
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        try:
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
            return await self._read_to(consumer, ends, skip)
        finally:
            await consumer.stop()

    async def _read_to(
        self, consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int], skip: bytes
    ) -> dict[bytes, bytes]:
        latest: dict[bytes, bytes] = {}
        deadline = time.monotonic() + self._read_timeout
        while not await caught_up(consumer, ends):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"state topic {self.topic} not read to its end in {self._read_timeout:g}s"
                )
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    if record.key is None or record.key == skip:
                        continue
                    if record.value is None:
                        latest.pop(record.key, None)
                    else:
                        latest[record.key] = record.value
        return latest

    def _require_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError(f"state topic {self.topic}: not started")
        return self._producer
