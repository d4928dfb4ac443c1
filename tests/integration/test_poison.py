"""Records one bad message would stop a worker with: a real worker, the embedded broker.
Each is dead-lettered with a reason and the events behind it are still judged."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from pytest_httpserver import HTTPServer

from anomalyd.worker.kafka.broker import EmbeddedBroker
from helpers import WorkerProcess, consume, eventually, received, worker_config

pytestmark = pytest.mark.integration

SPIKE_RULE = {"name": "LatencyHigh", "type": "above", "threshold": 500, "severity": "critical"}
#: The year 10000, in epoch milliseconds: a valid Kafka timestamp, not a valid datetime.
YEAR_10000_MS = 253_402_300_800_000


@pytest.fixture
def worker(tmp_path: Path, broker: EmbeddedBroker, httpserver: HTTPServer) -> Iterator[Any]:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    receiver = {"type": "webhook", "name": "oncall", "url": httpserver.url_for("/hook")}
    path, config = worker_config(
        tmp_path, broker.bootstrap, rules=[SPIKE_RULE], receivers=[receiver]
    )
    process = WorkerProcess(path, config, tmp_path / "worker.log").start()
    yield process
    process.stop()


async def send(
    bootstrap: str,
    topic: str,
    records: list[tuple[bytes | None, bytes, int | None]],
    compression: str | None = None,
) -> None:
    """(key, value, timestamp_ms) records, in order, from a producer that allows 8 MiB."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, compression_type=compression, max_request_size=8 << 20
    )
    await producer.start()
    try:
        for key, value, timestamp_ms in records:
            await producer.send_and_wait(topic, value, key=key, timestamp_ms=timestamp_ms)
    finally:
        await producer.stop()


def spike(stream: str) -> list[tuple[bytes | None, bytes, int | None]]:
    """A normal point and a spike: one page, judged only if the worker got this far."""
    now = time.time()
    return [
        (stream.encode(), orjson.dumps({"stream": stream, "ts": now + i, "value": v}), None)
        for i, v in enumerate([100, 900])
    ]


async def paged(httpserver: HTTPServer, worker: WorkerProcess, stream: str) -> None:
    def page() -> bool:
        worker.assert_running()
        return any(p["commonLabels"].get("stream") == stream for p in received(httpserver))

    await eventually(page, timeout=30, what=f"a page for {stream} from the worker")


async def test_an_oversized_compressed_event_is_dead_lettered_truncated_and_the_worker_goes_on(
    broker: EmbeddedBroker, httpserver: HTTPServer, worker: WorkerProcess
) -> None:
    """1.5 MB of JSON, a few KB gzipped on the wire: rejected as oversized, and its copy
    does not fit the worker's producer (1 MiB requests): it is dead-lettered truncated,
    with its size, and the events behind it are judged."""
    await worker.wait_ready()
    topics = worker.config["topics"]
    huge = orjson.dumps(
        {"stream": "big", "ts": time.time(), "value": 1, "labels": {"b": "x" * 1_500_000}}
    )
    records = [(b"big", huge, None), *spike("after.huge")]
    await send(broker.bootstrap, topics["events"], records, compression="gzip")

    await paged(httpserver, worker, "after.huge")
    [dead] = await consume(broker.bootstrap, topics["events_dlq"], 1)
    headers = dict(dead.headers)
    assert headers["reason"].startswith(b"oversized")
    assert headers["original_size"] == str(len(huge)).encode()
    assert headers["truncated"] == b"true"
    assert len(dead.value) < len(huge)
    assert huge.startswith(dead.value)
    worker.assert_running()


async def test_a_broker_timestamp_in_the_year_10000_is_dead_lettered(
    broker: EmbeddedBroker, httpserver: HTTPServer, worker: WorkerProcess
) -> None:
    """An event without `ts` takes its message's timestamp, which must pass the same
    1970..2200 check as an event's own."""
    await worker.wait_ready()
    topics = worker.config["topics"]
    value = b'{"stream": "far", "value": 900}'
    await send(
        broker.bootstrap,
        topics["events"],
        [(b"far", value, YEAR_10000_MS), *spike("after.far")],
    )
    await paged(httpserver, worker, "after.far")
    [dead] = await consume(broker.bootstrap, topics["events_dlq"], 1)
    assert dead.value == value
    assert dict(dead.headers)["reason"].startswith(b"bad_ts")


#: Run as the worker: a fault injected in the consumer's path outside any one record's
#: judging (where a bug in it, or in Faust, would be), which crashes the consumer; and a
#: consumer whose stop never returns, as observed after such crashes.
FAULTY_WORKER = """
import asyncio
import sys

from anomalyd.cli import main
from anomalyd.worker.kafka import batching, transport

ack = batching.BatchingConsumer._ack


def faulty_ack(self, tp, chunk):
    if any(record.value == b"CRASH" for record in chunk):
        raise RuntimeError("injected fault in the consumer")
    ack(self, tp, chunk)


async def never_stops(self):
    await asyncio.Event().wait()


batching.BatchingConsumer._ack = faulty_ack
transport._Consumer.on_stop = never_stops
sys.exit(main(sys.argv[1:]))
"""


async def test_a_crashed_worker_fails_liveness_and_exits_within_its_deadline(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """A crash that does happen does not leave a process that looks alive: /healthz
    fails, and the process exits non-zero within the shutdown deadline even though its
    consumer never finishes stopping."""
    script = tmp_path / "faulty_worker.py"
    script.write_text(FAULTY_WORKER)
    path, config = worker_config(tmp_path, broker.bootstrap, rules=[SPIKE_RULE], receivers=[])
    worker = WorkerProcess(path, config, tmp_path / "faulty.log")
    worker.command = [worker.command[0], str(script)]
    try:
        worker.start()
        await worker.wait_ready()
        await crash_and_exit(broker, worker)
    finally:
        worker.kill()


async def crash_and_exit(broker: EmbeddedBroker, worker: WorkerProcess) -> None:
    from anomalyd.worker.shutdown import DEADLINE_S

    await send(broker.bootstrap, worker.config["topics"]["events"], [(b"x", b"CRASH", None)])

    def dead_or_unhealthy() -> bool:
        status = worker.get("/healthz")[0]
        return status not in (200,) or worker.wait_exit(0) is not None

    await eventually(dead_or_unhealthy, timeout=10, what="/healthz to fail after the crash")
    crashed_at = time.monotonic()
    code = worker.wait_exit(DEADLINE_S + 10)
    assert code not in (None, 0), f"exit code {code} after {time.monotonic() - crashed_at:.0f}s"
    lines = [line.get("event") for line in worker.log_lines()]
    assert "worker_crashed" in lines


async def test_an_event_dated_2199_is_dead_lettered_not_judged(
    broker: EmbeddedBroker, httpserver: HTTPServer, worker: WorkerProcess
) -> None:
    """Judged, it fired an alert that never resolves (the stream's time stood in 2199)."""
    await worker.wait_ready()
    topics = worker.config["topics"]
    value = orjson.dumps({"stream": "future", "ts": "2199-12-31T00:00:00Z", "value": 900})
    await send(
        broker.bootstrap, topics["events"], [(b"future", value, None), *spike("after.future")]
    )
    await paged(httpserver, worker, "after.future")
    [dead] = await consume(broker.bootstrap, topics["events_dlq"], 1)
    assert dead.value == value
    assert dict(dead.headers)["reason"].startswith(b"future_ts")
    assert all(p["commonLabels"].get("stream") != "future" for p in received(httpserver))
