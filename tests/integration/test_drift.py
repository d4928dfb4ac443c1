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


#: Judged from the first window, confirmed over two (the defaults learn a day first).
FIXED = {"confirm_for": "0s", "seasonality": {"detect": False}}


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
        drift={"window": "60s", "grace": "0s", "min_count": 50, "severity": "critical", **FIXED},
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
        coverage = orjson.loads(body)["windows"]["api.p95"]
        assert (coverage["window"], coverage["sparse"]) == (60.0, False)
        assert 0 < coverage["windows_judged"] <= coverage["windows_closed"]
        history = orjson.loads(worker.get("/api/drift?stream=api.p95")[1])["windows"]
        assert len(history) >= 2
        metrics = worker.get("/metrics")[1]
        assert b"anomalyd_drifting_streams 1.0" in metrics
        assert b"anomalyd_drift_sparse_streams 0.0" in metrics
        assert b'anomalyd_drift_field_windows_total{judgement="shifted"}' in metrics
        assert len(drift_alerts(httpserver)) == 1  # one alert per episode, not a flood
    finally:
        worker.stop()


async def test_a_restart_in_the_middle_of_an_episode_resumes_it(
    broker: EmbeddedBroker, httpserver: HTTPServer, tmp_path: Path
) -> None:
    """The drift monitor's windows, references and open episode travel in the stream's
    snapshot: the restarted worker closes the episode the first one opened (one firing,
    one resolved alert), instead of relearning a reference and stranding the alert."""
    path, config = worker_config(
        tmp_path,
        broker.bootstrap,
        rules=[],
        receivers=[webhook_receiver(httpserver)],
        model={"mode": "shadow"},
        drift={"window": "60s", "grace": "0s", "min_count": 50, **FIXED},
        state={"snapshot_interval": "1h"},  # only the shutdown flush saves the state
    )
    topic = config["topics"]["events"]
    rng = random.Random(5)
    start = (time.time() // 60 - 30) * 60  # whole minutes, in the past

    def window(w: int, level: float) -> list[dict[str, Any]]:
        return [
            {"stream": "api.p95", "ts": start + 60 * w + 0.6 * i, "value": rng.gauss(level, 5)}
            for i in range(100)
        ]

    # Windows 0-5 around 100, 6-9 shifted by 3 std: the episode opens when window 7
    # closes (its second shifted window); window 9 is still open at the restart.
    before = [e for w in range(10) for e in window(w, 100.0 if w < 6 else 115.0)]
    first = WorkerProcess(path, config, tmp_path / "first.log").start()
    try:
        await first.wait_ready()
        await produce(broker.bootstrap, topic, before)
        [fired] = await eventually(lambda: drift_alerts(httpserver), what="the DataDrift alert")
        assert fired["status"] == "firing"
        await eventually(
            lambda: b"anomalyd_events_total 1000.0" in first.get("/metrics")[1],
            what="every event judged",
        )
    finally:
        assert first.stop() == 0

    # The new level goes on: against the reference the episode took (the new regime),
    # windows 9-11 are unchanged, and the third of them closes the episode.
    after = [e for w in range(10, 13) for e in window(w, 115.0)] + window(13, 115.0)[:1]
    second = WorkerProcess(path, config, tmp_path / "second.log").start()
    try:
        await second.wait_ready()
        await produce(broker.bootstrap, topic, after)
        payloads = await eventually(
            lambda: [p for p in drift_alerts(httpserver) if p["status"] == "resolved"],
            what="the episode's alert resolved",
        )
        [resolved] = payloads
        firing_alert, resolved_alert = fired["alerts"][0], resolved["alerts"][0]
        assert resolved_alert["fingerprint"] == firing_alert["fingerprint"]
        assert resolved_alert["annotations"]["episode"] == firing_alert["annotations"]["episode"]
        assert len(drift_alerts(httpserver)) == 2  # no second episode opened
        assert not any("drift_state_refused" in str(line) for line in second.log_lines())
    finally:
        second.stop()
