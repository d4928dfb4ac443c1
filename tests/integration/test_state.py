"""A restart resumes each stream's detection state instead of relearning from zero."""

from __future__ import annotations

import pickle
import random
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from pytest_httpserver import HTTPServer

from anomalyd.decide.state_codec import FORMAT, PICKLE_FORMAT
from anomalyd.worker.kafka.broker import EmbeddedBroker
from helpers import WorkerProcess, eventually, produce, received, webhook_receiver, worker_config

pytestmark = pytest.mark.integration


async def test_a_restarted_worker_resumes_the_model_where_it_stopped(
    broker: EmbeddedBroker, httpserver: HTTPServer, tmp_path: Path
) -> None:
    path, config = worker_config(
        tmp_path,
        broker.bootstrap,
        rules=[],
        receivers=[webhook_receiver(httpserver)],
        # The model alone may page, and only once it has learned 150 points (without
        # seasonality, it need not see a day of the stream first).
        model={"mode": "model", "warmup": 150, "threshold": 0.5, "seasonality": False},
        state={"snapshot_interval": "1h"},  # only the shutdown flush can save the state
    )
    topic = config["topics"]["events"]
    rng = random.Random(3)
    start = time.time() - 3600
    warm_up = [
        {"stream": "orders.per_sec", "ts": start + 10 * i, "value": 40 + rng.gauss(0, 2)}
        for i in range(200)
    ]

    first = WorkerProcess(path, config, tmp_path / "first.log").start()
    try:
        await first.wait_ready()
        await produce(broker.bootstrap, topic, warm_up)
        await eventually(
            lambda: b"anomalyd_event_latency_seconds_count 200.0" in first.get("/metrics")[1],
            what="200 events judged",
        )
    finally:
        assert first.stop() == 0

    second = WorkerProcess(path, config, tmp_path / "second.log").start()
    try:
        await second.wait_ready()
        restored = [line for line in second.log_lines() if line.get("event") == "state_restored"]
        assert sum(line["streams"] for line in restored) == 1  # ready means restored
        spike = {"stream": "orders.per_sec", "ts": start + 2000, "value": 400.0}
        await produce(broker.bootstrap, topic, [spike])
        [payload] = await eventually(lambda: received(httpserver), what="the model's alert")
        assert payload["commonLabels"]["alertname"] == "AnomalyDetected"
        assert payload["commonLabels"]["detector"] == "model"
        # The first worker's offsets were committed (through the batch consumer's acks):
        # the second reads only the spike, not the 200 events again.
        assert b"anomalyd_events_total 1.0" in second.get("/metrics")[1]
    finally:
        second.stop()


class TouchOnLoad:
    """A pickle that creates a file when loaded: harmless, and visible from outside."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return Path.touch, (self.path,)


async def test_a_hostile_state_record_runs_nothing_and_its_stream_starts_afresh(
    broker: EmbeddedBroker, httpserver: HTTPServer, tmp_path: Path
) -> None:
    path, config = worker_config(
        tmp_path,
        broker.bootstrap,
        rules=[],
        receivers=[webhook_receiver(httpserver)],
        state={"snapshot_interval": "1h"},
    )
    topic, state_topic = config["topics"]["events"], f"{config['app']['id']}-state"
    start = time.time() - 3600
    first = WorkerProcess(path, config, tmp_path / "first.log").start()
    try:
        await first.wait_ready()  # it creates the state topic
        await produce(broker.bootstrap, topic, [{"stream": "kept", "ts": start, "value": 1.0}])
        await eventually(
            lambda: b"anomalyd_event_latency_seconds_count 1.0" in first.get("/metrics")[1],
            what="the event judged",
        )
    finally:
        assert first.stop() == 0

    marker = tmp_path / "unpickled"
    hostile = {
        b"old": PICKLE_FORMAT + pickle.dumps(TouchOnLoad(marker)),
        b"new": FORMAT + pickle.dumps(TouchOnLoad(marker)),
        b"broken": FORMAT + b'{"mode": "hybrid", "rules": [',
    }
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        for key, value in hostile.items():
            await producer.send_and_wait(state_topic, value, key=key, partition=0)
    finally:
        await producer.stop()

    second = WorkerProcess(path, config, tmp_path / "second.log").start()
    try:
        await second.wait_ready()
        lines = second.log_lines()
        restored = [line for line in lines if line.get("event") == "state_restored"]
        assert sum(line["streams"] for line in restored) == 1  # "kept"
        [refused] = [line for line in lines if line.get("event") == "state_snapshots_refused"]
        assert (refused["streams"], refused["old_format"]) == (3, 1)
        assert not marker.exists()
        # Those streams start afresh, and the worker goes on judging.
        events = [{"stream": s, "ts": start + 10, "value": 2.0} for s in ("old", "new", "broken")]
        await produce(broker.bootstrap, topic, events)
        await eventually(
            lambda: b"anomalyd_events_total 3.0" in second.get("/metrics")[1],
            what="the three streams' events judged",
        )
        assert second.get("/healthz")[0] == 200
        assert not marker.exists()
    finally:
        second.stop()
