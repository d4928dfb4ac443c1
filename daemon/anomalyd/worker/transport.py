"""A Faust transport extension: the consumer's fetch wait becomes configurable.

Faust 0.15 hard-codes `fetch_max_wait_ms=1500` when it builds the aiokafka
consumer. A broker that holds a fetch for the full wait even when data is
waiting (the embedded one does) then adds up to 1.5 s to every event's
latency. Everything else (offsets, rebalancing, acks) stays Faust's own.
"""

from __future__ import annotations

from typing import Any, cast

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads this when start() builds its Fetcher, which comes next.
        consumer._fetch_max_wait_ms = cast(App, self.app).fetch_max_wait_ms
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class App(faust.App):
    """faust.App whose Kafka consumer uses `fetch_max_wait_ms`."""

    def __init__(self, *args: Any, fetch_max_wait_ms: int = 500, **kwargs: Any) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Transport:
        return Transport(self.conf.broker_consumer, self)
