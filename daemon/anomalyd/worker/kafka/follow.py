"""Follow a topic from its beginning, outside any consumer group: every partition, every
record, on every worker (the cluster-wide alerts view reads the alerts topic this way).
Nothing is committed; a restart reads the topic again from its beginning.

The topic is created by the worker (Faust declares it); the follower never creates it,
and waits for it to appear.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from mode import Service

_log = structlog.get_logger(__name__)

#: Apply one record: (value, headers, timestamp in ms).
RecordHandler = Callable[[bytes | None, Sequence[tuple[str, bytes]], int], None]

_IDLE_WAIT_MS = 100
#: How long to wait before trying again after the consumer failed.
_RETRY_S = 2.0


class TopicFollower(Service):
    def __init__(self, bootstrap: Sequence[str], topic: str, handle: RecordHandler) -> None:
        super().__init__()
        self._bootstrap = list(bootstrap)
        self._topic = topic
        self._handle = handle
        self.records = 0

    async def on_started(self) -> None:
        # In the background: the worker does not wait for the view to start serving.
        self.add_future(self._follow())

    async def _follow(self) -> None:
        while not self.should_stop:
            try:
                await self._read()
            except asyncio.CancelledError:
                raise
            except (KafkaError, OSError) as error:  # the broker went away: read again
                _log.warning("topic_follow_failed", topic=self._topic, error=repr(error))
                await self.sleep(_RETRY_S)

    async def _read(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=_IDLE_WAIT_MS,
        )
        await consumer.start()
        try:
            await self._subscribe(consumer)
            while not self.should_stop:
                batches = await consumer.getmany(timeout_ms=_IDLE_WAIT_MS)
                for records in batches.values():
                    for record in records:
                        self._handle(record.value, list(record.headers or ()), record.timestamp)
                        self.records += 1
        finally:
            await _stopped(consumer, self._topic)

    async def _subscribe(self, consumer: AIOKafkaConsumer) -> None:
        """Subscribe once the topic exists: a subscription to a missing topic would have
        a broker that creates topics on demand create it, with its default partitions."""
        while self._topic not in await consumer.topics():
            await self.sleep(_RETRY_S)
        consumer.subscribe([self._topic])
        _log.info("topic_follow_started", topic=self._topic)


async def _stopped(consumer: AIOKafkaConsumer, topic: str) -> None:
    try:
        await consumer.stop()
    except (KafkaError, OSError) as error:  # it is being dropped either way
        _log.warning("topic_follow_stop_failed", topic=topic, error=repr(error))
