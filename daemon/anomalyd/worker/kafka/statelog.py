"""Replicated state on compacted Kafka topics: read each topic fully at start, keep
following it, and write one record at a time.

Delivery keeps silences, the notification log and the alerts held in groups this way:
every worker of the group reads what every worker wrote, and a restarted worker starts
from what was written before. One record per produce request, awaited, because the
embedded broker answers ListOffsets wrongly after a batch of several records, and
catching up relies on it (`daemon/README.md`).

A record carries its writer's id in a header; a worker skips its own records when it
reads them back (it applied them when it wrote them), so reading back cannot undo a
newer local change.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from anomalyd.worker.kafka.admin import ensure_topics, wait_for_broker

_log = structlog.get_logger(__name__)

#: What a write to a state topic raises when the topic is not writable now.
WRITE_ERRORS: tuple[type[Exception], ...] = (RuntimeError, KafkaError, OSError)

#: Apply one record: (key, value); value None is a deletion.
Handler = Callable[[bytes, bytes | None], None]

_WRITER = "writer"
_IDLE_WAIT_MS = 100


class StateLogError(RuntimeError):
    """The state topics could not be read or written."""


async def ensure_compacted(
    bootstrap: Sequence[str], names: Sequence[str], partitions: int = 1
) -> None:
    """Create the topics, compacted, with `partitions` each, unless they exist already."""
    topics = dict.fromkeys(names, partitions)
    await ensure_topics(",".join(bootstrap), topics, {"cleanup.policy": "compact"})


async def caught_up(consumer: AIOKafkaConsumer, ends: Mapping[Any, int]) -> bool:
    """Whether the consumer's position has reached `ends` on every partition."""
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


class StateLog:
    def __init__(
        self, bootstrap: Sequence[str], handlers: Mapping[str, Handler], *, start_timeout: float
    ) -> None:
        self._bootstrap = list(bootstrap)
        self._handlers = dict(handlers)
        self._start_timeout = start_timeout
        self.writer = uuid.uuid4().hex.encode()
        self._lock = asyncio.Lock()
        self._progress = asyncio.Condition()
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._follow: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None

    async def start(self) -> None:
        """Wait for the brokers, create the topics if needed, read each to its end, then
        follow them."""
        await wait_for_broker(self._bootstrap)
        await ensure_compacted(self._bootstrap, list(self._handlers))
        self._producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, linger_ms=0)
        self._consumer = AIOKafkaConsumer(
            *self._handlers,
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=_IDLE_WAIT_MS,
        )
        await self._producer.start()
        await self._consumer.start()
        self._follow = asyncio.create_task(self._follow_topics(), name="state-log-follow")
        await self.catch_up()

    async def stop(self) -> None:
        if self._follow is not None:
            self._follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follow
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    async def put(self, topic: str, key: bytes, value: bytes | None) -> None:
        """Write one record and wait until the broker has it."""
        if self._producer is None:
            raise StateLogError("the state log has not started")
        async with self._lock:
            await self._producer.send_and_wait(
                topic, value, key=key, headers=[(_WRITER, self.writer)]
            )

    async def catch_up(self) -> None:
        """Return once everything written before the call has been applied here."""
        consumer = self._require_consumer()
        deadline = time.monotonic() + self._start_timeout
        partitions = await self._assignment(consumer, deadline)
        ends: dict[Any, int] = await consumer.end_offsets(list(partitions))
        async with self._progress:
            while not await caught_up(consumer, ends):
                self._raise_if_failed()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise StateLogError(
                        f"state topics not read to their end in {self._start_timeout:g}s"
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._progress.wait(), remaining)

    async def _assignment(self, consumer: AIOKafkaConsumer, deadline: float) -> set[Any]:
        while True:
            partitions: set[Any] = consumer.assignment()
            if {tp.topic for tp in partitions} >= set(self._handlers):
                return partitions
            if time.monotonic() > deadline:
                raise StateLogError(f"no partitions assigned for {sorted(self._handlers)}")
            await asyncio.sleep(_IDLE_WAIT_MS / 1000)

    async def _follow_topics(self) -> None:
        consumer = self._require_consumer()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=_IDLE_WAIT_MS)
                for tp, records in batches.items():
                    for record in records:
                        self._apply(tp.topic, record)
                async with self._progress:
                    self._progress.notify_all()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # reported to whoever waits on catch_up, and logged
            self._failure = error
            _log.exception("state_log_follow_failed")
            async with self._progress:
                self._progress.notify_all()
            raise

    def _apply(self, topic: str, record: Any) -> None:
        if dict(record.headers or ()).get(_WRITER) == self.writer:
            return
        if record.key is None:
            _log.warning("state_record_without_key", topic=topic, offset=record.offset)
            return
        try:
            self._handlers[topic](record.key, record.value)
        except (ValueError, TypeError, KeyError, AttributeError):
            # The handlers skip what they cannot read; one they did not foresee must not
            # stop this worker from following every later record (or from starting).
            _log.exception("state_record_skipped", topic=topic, offset=record.offset)

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise StateLogError("following the state topics failed") from self._failure

    def _require_consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise StateLogError("the state log has not started")
        return self._consumer
