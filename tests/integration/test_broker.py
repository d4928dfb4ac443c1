"""The embedded Tansu broker: start, reuse, stop, topics, and demo traffic through it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from structlog.testing import capture_logs

from anomalyd.clock import SystemClock
from anomalyd.demo import DEFAULT_STREAMS, produce_demo
from anomalyd.worker.kafka.admin import (
    BrokerError,
    ensure_topics,
    free_port,
    is_listening,
    wait_until_ready,
)
from anomalyd.worker.kafka.broker import EmbeddedBroker, tansu_binary

pytestmark = pytest.mark.integration

DAEMON_DIR = Path(__file__).resolve().parents[2] / "daemon"


@pytest.fixture
async def broker() -> AsyncIterator[EmbeddedBroker]:
    async with EmbeddedBroker(port=free_port()) as running:
        assert running.started_here
        yield running


def poll_until(condition: Callable[[], bool], deadline_s: float = 10.0) -> bool:
    """Whether `condition` became true before the deadline (checked every 20 ms)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def consume(bootstrap: str, topic: str, count: int, deadline_s: float = 20.0) -> list[Any]:
    """Read `count` records of `topic` from the beginning, or fail at the deadline."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    records: list[Any] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        while len(records) < count and loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            records.extend(r for batch in batches.values() for r in batch)
    finally:
        await consumer.stop()
    assert len(records) == count, f"read {len(records)} of {count} records"
    return records


def test_binary_is_found_in_the_wheel() -> None:
    binary = tansu_binary()
    assert binary.name == "tansu"
    assert os.access(binary, os.X_OK)


async def test_topics_produce_and_consume(broker: EmbeddedBroker) -> None:
    await ensure_topics(broker.bootstrap, {"orders": 4, "audit": 1})
    await ensure_topics(broker.bootstrap, {"orders": 4})  # existing: fine

    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        assert await producer.partitions_for("orders") == {0, 1, 2, 3}
        assert await producer.partitions_for("audit") == {0}
        await producer.send_and_wait("orders", b'{"n": 1}', key=b"k1")
    finally:
        await producer.stop()

    (record,) = await consume(broker.bootstrap, "orders", 1)
    assert (record.key, record.value) == (b"k1", b'{"n": 1}')


async def test_existing_topic_with_other_partition_count_is_reported(
    broker: EmbeddedBroker,
) -> None:
    await ensure_topics(broker.bootstrap, {"events": 2})
    with capture_logs() as logs:
        await ensure_topics(broker.bootstrap, {"events": 4})
    warnings = [e for e in logs if e["event"] == "topic_partition_count_differs"]
    assert warnings == [
        {
            "event": "topic_partition_count_differs",
            "log_level": "warning",
            "topic": "events",
            "wanted": 4,
            "actual": 2,
        }
    ]


async def test_tansu_answers_an_existing_topic_with_topic_already_exists(
    broker: EmbeddedBroker,
) -> None:
    # What ensure_topics relies on: a per-topic code 36, not an exception.
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic("twice", 3, 1)])
        response = await admin.create_topics([NewTopic("twice", 3, 1)])
    finally:
        await admin.close()
    assert [tuple(e[:2]) for e in response.topic_errors] == [("twice", 36)]


async def test_second_broker_on_the_same_port_reuses_the_first(broker: EmbeddedBroker) -> None:
    port = int(broker.bootstrap.rsplit(":", 1)[1])
    second = EmbeddedBroker(port=port)
    await second.start()
    assert not second.started_here
    assert second.pid is None
    await second.stop()

    assert broker.pid is not None
    assert pid_alive(broker.pid)
    await wait_until_ready(broker.bootstrap, deadline_s=2.0)


async def test_two_brokers_racing_for_one_port_end_up_sharing_one() -> None:
    port = free_port()
    first, second = EmbeddedBroker(port=port), EmbeddedBroker(port=port)
    try:
        await asyncio.gather(first.start(), second.start())
        owners = [b for b in (first, second) if b.started_here]
        assert len(owners) == 1
        (owner,) = owners
        assert owner.pid is not None
        assert pid_alive(owner.pid)
        assert (first if owner is second else second).pid is None
    finally:
        await first.stop()
        await second.stop()


async def test_stop_ends_the_process_and_is_idempotent() -> None:
    running = EmbeddedBroker(port=free_port())
    await running.start()
    pid = running.pid
    assert pid is not None
    assert pid_alive(pid)
    host, port = running.bootstrap.rsplit(":", 1)

    await running.stop()
    await running.stop()

    assert not pid_alive(pid)  # reaped, not a zombie
    assert poll_until(lambda: not is_listening(host, int(port)), deadline_s=5.0)


async def test_stop_is_prompt_while_a_client_is_connected() -> None:
    # Tansu lingers ~5 s on SIGTERM while connections are open; stop() must not.
    running = EmbeddedBroker(port=free_port())
    await running.start()
    producer = AIOKafkaProducer(bootstrap_servers=running.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait("linger", b"x")
        loop = asyncio.get_running_loop()
        began = loop.time()
        await running.stop()
        assert loop.time() - began < 2.0
    finally:
        await producer.stop()


async def test_early_exit_is_reported_with_code_and_output() -> None:
    # Bound but not listening: the probe sees nothing there, Tansu cannot bind.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        port = squatter.getsockname()[1]
        with pytest.raises(BrokerError, match=r"exited with code \d+.*Address in use"):
            await EmbeddedBroker(port=port, start_timeout=10.0).start()


async def test_wait_until_ready_gives_up_at_the_deadline() -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(BrokerError, match="no Kafka broker answered"):
        await wait_until_ready(f"127.0.0.1:{free_port()}", deadline_s=0.3)
    assert loop.time() - began < 5.0


async def test_demo_traffic_lands_in_the_topic(broker: EmbeddedBroker) -> None:
    await ensure_topics(broker.bootstrap, {"demo-events": 4})
    clock = SystemClock()
    began = clock.now()
    produced = await produce_demo(
        broker.bootstrap, "demo-events", rate_per_s=200.0, clock=clock.now, duration_s=1.0
    )
    assert 150 <= produced <= 200

    records = await consume(broker.bootstrap, "demo-events", produced)
    names = {s.name for s in DEFAULT_STREAMS}
    for record in records:
        event = orjson.loads(record.value)
        assert set(event) == {"stream", "ts", "value", "labels"}
        assert record.key == event["stream"].encode()
        assert event["stream"] in names
        assert event["ts"].endswith("Z")
    assert {orjson.loads(r.value)["stream"] for r in records} == names
    assert clock.now() - began < 10.0


async def test_demo_logs_each_injected_anomaly(broker: EmbeddedBroker) -> None:
    await ensure_topics(broker.bootstrap, {"demo-anomalies": 4})
    with capture_logs() as logs:
        await produce_demo(
            broker.bootstrap,
            "demo-anomalies",
            rate_per_s=200.0,
            clock=SystemClock().now,
            duration_s=1.2,
            anomaly_every_s=0.5,
        )
    injected = [e for e in logs if e["event"] == "demo_anomaly_injected"]
    assert [e["kind"] for e in injected] == ["spike", "dip"]
    assert all(e["stream"] in {s.name for s in DEFAULT_STREAMS} for e in injected)


async def test_produce_demo_gives_up_without_a_broker() -> None:
    with pytest.raises(ConnectionError, match="no Kafka broker"):
        await produce_demo(
            f"127.0.0.1:{free_port()}",
            "nowhere",
            rate_per_s=10.0,
            clock=SystemClock().now,
            duration_s=1.0,
            connect_deadline_s=0.5,
        )


def run_broker_cli(port: int) -> subprocess.Popen[bytes]:
    code = "import sys; from anomalyd.worker.kafka.broker import run_broker_forever as r; "
    code += f"sys.exit(r('127.0.0.1', {port}))"
    env = {**os.environ, "PYTHONPATH": str(DAEMON_DIR)}
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL)


def test_run_broker_forever_serves_until_sigterm() -> None:
    port = free_port()
    cli = run_broker_cli(port)
    try:
        assert poll_until(lambda: is_listening("127.0.0.1", port), deadline_s=20.0)
        second = run_broker_cli(port)  # the port is taken: fails fast
        assert second.wait(timeout=20) == 1
        cli.send_signal(signal.SIGTERM)
        assert cli.wait(timeout=20) == 0
        assert poll_until(lambda: not is_listening("127.0.0.1", port), deadline_s=5.0)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait(timeout=10)
