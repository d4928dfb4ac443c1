"""A restart resumes each stream's detection state instead of relearning from zero."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from anomalyd.worker.broker import EmbeddedBroker
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
        # The model alone may page, and only once it has learned 150 points.
        model={"mode": "model", "warmup": 150, "threshold": 0.5},
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
