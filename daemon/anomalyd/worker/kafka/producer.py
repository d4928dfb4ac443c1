"""The producer of the command line's events (`anomalyd demo`, `anomalyd send`).

Here so that aiokafka stays inside `kafka/`: the commands take an `EventProducer`."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

log = structlog.get_logger(__name__)

#: Between two attempts to start a producer while the broker is not up yet.
_CONNECT_RETRY_S = 0.5


class EventProducer(Protocol):
    """What the commands use of a started producer."""

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[Any]:
        """Queue one record; the future settles when the broker has it (or not)."""

    async def flush(self) -> None: ...

    async def stop(self) -> None: ...


async def connect_producer(bootstrap: str, deadline_s: float) -> EventProducer:
    """A started producer; retries while the worker may still be starting the broker."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    # Knock quietly first: aiokafka logs every refused connection as an error. The broker
    # is another process, so there is no event to wait on: poll it.
    while not await _accepts_connections(bootstrap) and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    while True:
        # No idempotence: the embedded broker has no InitProducerId.
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
        try:
            await producer.start()
        except (KafkaError, OSError) as exc:
            await producer.stop()
            if loop.time() >= deadline:
                raise ConnectionError(
                    f"no Kafka broker at {bootstrap} within {deadline_s:g} s: {exc!r}"
                ) from exc
            log.info("waiting_for_broker", bootstrap=bootstrap, error=repr(exc))
            await asyncio.sleep(_CONNECT_RETRY_S)
            continue
        started: EventProducer = producer  # aiokafka is untyped
        return started


async def _accepts_connections(bootstrap: str) -> bool:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        _, writer = await asyncio.open_connection(host, int(port))
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True
