"""Faust transport extensions, registered through `App` (not a fork of Faust):

- the consumer's fetch wait becomes configurable. Faust 0.15 hard-codes
  `fetch_max_wait_ms=1500` when it builds the aiokafka consumer; a broker that holds
  a fetch for the full wait even when data is waiting (the embedded one does) then
  adds up to 1.5 s to every event's latency;
- chosen topics are consumed a fetched batch at a time (`batching.py`);
- hooks run before offsets are committed (`App.before_commit`): the daemon writes
  the state its streams reached, so a commit never runs ahead of the saved state
  (after a crash the next owner replays from the commit onto exactly that state);
- the producer's metadata always covers every topic the worker writes
  (`App.produced_topics`). aiokafka asks the broker only for the topics it was told
  about once it is told about any: after the first send to a new topic (the first
  dead letter, say), its metadata forgets the topics it had learned at start-up,
  and a batch still lingering for one of those is stuck (its leader unknown, no
  refresh brings it back) until the request timeout, 20 minutes;
- the table manager does not sleep a fixed second before it starts recovery when
  the app has no tables (the daemon keeps its state in its own compacted topics):
  that second was a fifth of the worker's start-up.

Everything else (offsets, rebalancing, acks) stays Faust's own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, cast

import faust
import structlog
from aiokafka.errors import KafkaError
from faust.tables.manager import TableManager as FaustTableManager
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, TopicT

from anomalyd.worker.kafka.batching import BatchHandler, BatchingConsumer

_log = structlog.get_logger(__name__)


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads this when start() builds its Fetcher, which comes next.
        consumer._fetch_max_wait_ms = cast(App, self.app).fetch_max_wait_ms
        return consumer


class _Consumer(BatchingConsumer, faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _commit_offsets(
        self, offsets: Mapping[TP, int], start_new_transaction: bool = True
    ) -> bool:
        # Faust calls this only with offsets to commit, on its interval, every
        # `broker_commit_every` acks, on a rebalance and at shutdown.
        await self.publishes_settled()  # what was acked has been sent, too
        try:
            for hook in cast(App, self.app).commit_hooks:
                await hook()
        except (KafkaError, OSError, TimeoutError) as error:  # the state was not written
            _log.error("commit_postponed", error=repr(error), partitions=len(offsets))
            return False
        return bool(await super()._commit_offsets(offsets, start_new_transaction))


class _Producer(faust_aiokafka.Producer):
    async def on_start(self) -> None:
        await super().on_start()
        topics = cast(App, self.app).produced_topics
        if topics:  # see the module's docstring
            await self._ensure_producer().client.set_topics(topics)


class Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
    Producer = _Producer


class TableManager(FaustTableManager):
    async def on_start(self) -> None:
        if self:  # tables registered: Faust's own start, with its wait for more
            await super().on_start()
            return
        await self._update_channels()
        await self.recovery.start()


class App(faust.App):
    """faust.App whose Kafka consumer uses `fetch_max_wait_ms` and can hand whole
    fetched batches to a handler (`consume_in_batches`)."""

    def __init__(
        self,
        *args: Any,
        fetch_max_wait_ms: int = 500,
        produced_topics: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        #: In the producer's metadata from the start: every topic it may write, at least.
        self.produced_topics = list(produced_topics)
        #: topic name -> handler of its fetched batches, one partition at a time.
        self.batch_handlers: dict[str, BatchHandler] = {}
        #: Awaited, in order, before each offset commit.
        self.commit_hooks: list[Callable[[], Awaitable[Any]]] = []
        super().__init__(*args, TableManager=TableManager, **kwargs)

    def _new_transport(self) -> Transport:
        return Transport(self.conf.broker_consumer, self)

    def before_commit(self, hook: Callable[[], Awaitable[Any]]) -> None:
        """Await `hook` before every offset commit. If it raises, that commit does not
        happen (logged as `commit_postponed`); the next one tries again."""
        self.commit_hooks.append(hook)

    def consume_in_batches(self, topic: TopicT, handler: BatchHandler) -> None:
        """Subscribe to `topic` (through the Conductor, as an agent would) and hand its
        records to `handler` a partition's fetched batch at a time (`batching.py`)."""
        for name in topic.topics:
            self.batch_handlers[name] = handler
        self.topics.add(topic)

        @self.task  # type: ignore[untyped-decorator]
        async def declare() -> None:  # as a stream declares its topic when it starts
            await topic.maybe_declare()
