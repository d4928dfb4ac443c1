"""Drift end to end: window statistics on the drift topic and /api/drift, one DataDrift alert."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from pytest_httpserver import HTTPServer

from anomalyd.worker.kafka.broker import EmbeddedBroker
from helpers import (
    WorkerProcess,
    consume,
    eventually,
    produce,
    received,
    webhook_receiver,
    worker_config,
)

pytestmark = pytest.mark.integration


def drift_alerts(httpserver: HTTPServer) -> list[dict[str, Any]]:
    return [p for p in received(httpserver) if p["commonLabels"].get("alertname") == "DataDrift"]


async def test_a_mean_shift_is_reported_per_window_and_alerted_once(
    broker: EmbeddedBroker, httpserver: HTTPServer, tmp_path: Path
) -> None:
    path, config = worker_config(
        tmp_path,
        broker.bootstrap,
        rules=[],
        receivers=[webhook_receiver(httpserver)],
        model={"mode": "shadow"},
        drift={"window": "60s", "grace": "0s", "min_count": 50, "severity": "critical"},
    )
    rng = random.Random(4)
    start = (time.time() // 60 - 20) * 60  # whole minutes, in the past
    # 6 windows around 100, then 5 windows shifted by 3 standard deviations; 100 points each.
    events = [
        {"stream": "api.p95", "ts": start + 0.6 * i, "value": rng.gauss(100 if i < 600 else 115, 5)}
        for i in range(1100)
    ]
    worker = WorkerProcess(path, config, tmp_path / "worker.log").start()
    try:
        await worker.wait_ready()
        await produce(broker.bootstrap, config["topics"]["events"], events)

        [alert] = await eventually(lambda: drift_alerts(httpserver), what="the DataDrift alert")
        assert alert["status"] == "firing"
        assert alert["commonLabels"]["stream"] == "api.p95"
        assert alert["commonLabels"]["detector"] == "drift"
        assert alert["commonLabels"]["severity"] == "critical"

        records = await consume(broker.bootstrap, config["topics"]["drift"], 10)
        windows = [orjson.loads(r.value) for r in records]
        assert {w["stream"] for w in windows} == {"api.p95"}
        assert windows[0]["status"] == "stable"
        assert any(w["status"] == "drifting" for w in windows)

        status, body = worker.get("/api/drift")
        assert status == 200
        [latest] = orjson.loads(body)["streams"]["api.p95"]
        assert latest["status"] == "drifting"
        history = orjson.loads(worker.get("/api/drift?stream=api.p95")[1])["windows"]
        assert len(history) >= 2
        assert b"anomalyd_drifting_streams 1.0" in worker.get("/metrics")[1]
        assert len(drift_alerts(httpserver)) == 1  # one alert per episode, not a flood
    finally:
        worker.stop()
