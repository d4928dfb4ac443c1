"""StateLog over an in-memory broker (aiokafka's producer and consumer replaced): it reads
every topic to its end before it starts, follows what others write after, skips its own
records and the ones it cannot apply, and refuses writes before it starts."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition

from anomalyd.worker.kafka import statelog
from anomalyd.worker.kafka.statelog import StateLog, StateLogError

TOPICS = ("silences", "nflog")


class Broker:
    """One partition per topic; records as aiokafka's consumer returns them."""

    def __init__(self) -> None:
        self.log: dict[str, list[Any]] = {topic: [] for topic in TOPICS}

    def append(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Sequence[Any] = ()
    ) -> None:
        offset = len(self.log[topic])
        self.log[topic].append(
            SimpleNamespace(key=key, value=value, headers=list(headers), offset=offset)
        )


class Producer:
    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send_and_wait(
        self, topic: str, value: bytes | None, *, key: bytes, headers: Sequence[Any]
    ) -> None:
        self._broker.append(topic, key, value, headers)


class Consumer:
    def __init__(self, broker: Broker, topics: Sequence[str]) -> None:
        self._broker = broker
        self._positions = {TopicPartition(topic, 0): 0 for topic in topics}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def assignment(self) -> set[TopicPartition]:
        return set(self._positions)

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self._broker.log[tp.topic]) for tp in tps}

    async def position(self, tp: TopicPartition) -> int:
        return self._positions[tp]

    async def getmany(self, timeout_ms: int) -> dict[TopicPartition, list[Any]]:
        batches = {}
        for tp, position in self._positions.items():
            fresh = self._broker.log[tp.topic][position:]
            if fresh:
                batches[tp] = fresh
                self._positions[tp] = position + len(fresh)
        if not batches:
            await asyncio.sleep(0.01)  # a fetch that found nothing waits a little
        return batches


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Broker:
    memory = Broker()

    async def nothing(*args: Any, **kwargs: Any) -> None:
        return None

    monkeypatch.setattr(statelog, "wait_for_broker", nothing)
    monkeypatch.setattr(statelog, "ensure_compacted", nothing)
    monkeypatch.setattr(statelog, "AIOKafkaProducer", lambda **kwargs: Producer(memory))
    monkeypatch.setattr(
        statelog, "AIOKafkaConsumer", lambda *topics, **kwargs: Consumer(memory, topics)
    )
    return memory


def recording() -> tuple[dict[str, Any], list[tuple[str, bytes, bytes | None]]]:
    applied: list[tuple[str, bytes, bytes | None]] = []

    def handler(topic: str) -> Any:
        return lambda key, value: applied.append((topic, key, value))

    return {topic: handler(topic) for topic in TOPICS}, applied


async def test_start_reads_what_was_written_before(broker: Broker) -> None:
    broker.append("silences", b"s1", b"one", [("writer", b"someone else")])
    broker.append("nflog", b"n1", b"entry")
    broker.append("silences", b"s1", None)  # deleted since
    handlers, applied = recording()
    log = StateLog(["memory:0"], handlers, start_timeout=5)
    await log.start()
    try:
        by_topic = {topic: [(k, v) for t, k, v in applied if t == topic] for topic in TOPICS}
        assert by_topic == {
            "silences": [(b"s1", b"one"), (b"s1", None)],
            "nflog": [(b"n1", b"entry")],
        }
    finally:
        await log.stop()


async def test_it_follows_what_others_write_and_skips_its_own(broker: Broker) -> None:
    handlers, applied = recording()
    log = StateLog(["memory:0"], handlers, start_timeout=5)
    await log.start()
    try:
        await log.put("silences", b"mine", b"applied when written")
        broker.append("silences", b"theirs", b"from another worker")
        await log.catch_up()
        assert applied == [("silences", b"theirs", b"from another worker")]
    finally:
        await log.stop()


async def test_records_it_cannot_apply_are_skipped_not_fatal(broker: Broker) -> None:
    handlers, applied = recording()

    def fragile(key: bytes, value: bytes | None) -> None:
        if value == b"bad":
            raise ValueError("not a silence")
        applied.append(("silences", key, value))

    handlers["silences"] = fragile
    broker.append("silences", None, b"no key")
    broker.append("silences", b"a", b"bad")
    broker.append("silences", b"b", b"good")
    log = StateLog(["memory:0"], handlers, start_timeout=5)
    await log.start()
    try:
        assert applied == [("silences", b"b", b"good")]
    finally:
        await log.stop()


async def test_writing_before_the_start_is_refused() -> None:
    handlers, _ = recording()
    with pytest.raises(StateLogError):
        await StateLog(["memory:0"], handlers, start_timeout=5).put("silences", b"k", b"v")
