"""The feedback loop end to end: a model alert reaches a webhook with signed feedback links;
labels given through the links and the API reach the feedback topic, the stream's owner
applies them, and the stream's threshold moves (metrics, /api/alerts, the next alert)."""

from __future__ import annotations

import random
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson
import pytest
import yaml
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

TOKEN = "feedback-api-token"
SECRET = "a-feedback-secret-of-32-characters"
STREAM = "orders.per_sec"


def post(worker: WorkerProcess, path: str, body: Any, token: str | None) -> tuple[int, Any]:
    status, response = worker.call("POST", path, body, token)
    return status, orjson.loads(response)


def follow(url: str, method: str = "GET") -> tuple[int, str]:
    """What a browser (or a link checker) gets for a link."""
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, method=method), timeout=5
        ) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def firing_alerts(httpserver: HTTPServer) -> list[dict[str, Any]]:
    return [
        alert
        for payload in received(httpserver)
        for alert in payload["alerts"]
        if alert["status"] == "firing"
    ]


def metric(worker: WorkerProcess, line: str) -> bool:
    return line.encode() in worker.get("/metrics")[1]


async def test_labels_move_the_streams_threshold(
    broker: EmbeddedBroker, httpserver: HTTPServer, tmp_path: Path
) -> None:
    path, config = worker_config(
        tmp_path,
        broker.bootstrap,
        rules=[],
        receivers=[webhook_receiver(httpserver)],
        model={
            "mode": "model",
            "warmup": 150,
            "seasonality": False,  # else the model waits for a day of the stream
            "threshold": 0.5,
            "feedback": {"min_labels": 2, "step": 0.1, "max_threshold": 0.9},
        },
        http={"api_token": TOKEN, "feedback_secret": SECRET},
        drift={"enabled": False},
    )
    config["app"]["external_url"] = f"http://127.0.0.1:{config['http']['port']}"
    path.write_text(yaml.safe_dump(config))
    topic = config["topics"]["events"]
    rng = random.Random(3)
    start = time.time() - 3600

    def point(i: int, value: float | None = None) -> dict[str, Any]:
        normal = 40 + rng.gauss(0, 2)
        return {"stream": STREAM, "ts": start + 10 * i, "value": normal if value is None else value}

    worker = WorkerProcess(path, config, tmp_path / "worker.log").start()
    try:
        await worker.wait_ready()
        # Warm up, one spike, back to normal: the model fires, then resolves.
        events = [point(i) for i in range(200)] + [point(200, 400.0)]
        await produce(broker.bootstrap, topic, events + [point(i) for i in range(201, 206)])
        [first] = await eventually(lambda: firing_alerts(httpserver), what="the model's alert")
        fp = first["fingerprint"]
        assert first["labels"]["detector"] == "model"
        assert first["annotations"]["threshold"] == "0.5"
        links = {
            label: first["annotations"][f"feedback_{label}"]
            for label in ("true_positive", "false_positive")
        }
        for label, link in links.items():
            assert link.startswith(f"{worker.http}/api/alerts/{fp}/feedback?label={label}&")

        status, listed = worker.get(f"/api/alerts?stream={STREAM}")
        assert status == 200
        assert fp in {alert["fingerprint"] for alert in orjson.loads(listed)["recent"]}

        # The API's token guards POST; the signature guards links.
        body = {"label": "false_positive", "by": "test", "comment": "a load test"}
        assert post(worker, f"/api/alerts/{fp}/feedback", body, "wrong")[0] == 401
        assert post(worker, f"/api/alerts/{fp}/feedback", body, None)[0] == 401
        parts = urlsplit(links["true_positive"])
        tampered = {**dict(parse_qsl(parts.query)), "label": "false_positive"}
        status, page = follow(f"{worker.http}{parts.path}?{urlencode(tampered)}")
        assert status == 403
        assert "not valid" in page

        # A link checker's HEAD records nothing; one click (twice: counted once), then two
        # labels through the API.
        assert follow(links["true_positive"], method="HEAD") == (200, "")
        for _ in range(2):
            status, page = follow(links["false_positive"])
            assert status == 200
            assert "false positive" in page
        for _ in range(2):
            status, answer = post(worker, f"/api/alerts/{fp}/feedback", body, TOKEN)
            assert status == 202
            assert answer["feedback"]["stream"] == STREAM

        await eventually(
            lambda: metric(worker, 'anomalyd_threshold_adaptations_total{direction="up"} 2.0'),
            what="two threshold moves",
        )
        assert metric(
            worker, 'anomalyd_feedback_total{detector="model",label="false_positive"} 3.0'
        )
        assert metric(worker, 'anomalyd_feedback_precision{detector="model"} 0.2')
        # The link checker's HEAD recorded nothing: the series stays at its 0.
        assert metric(worker, 'anomalyd_feedback_total{detector="model",label="true_positive"} 0.0')
        status, detail = worker.get(f"/api/alerts/{fp}")
        assert status == 200
        feedback = orjson.loads(detail)["feedback"]
        assert feedback["model_threshold"] == pytest.approx(0.7)
        assert feedback["configured_threshold"] == 0.5
        moves = [line for line in worker.log_lines() if line.get("event") == "threshold_adapted"]
        assert [(m["old"], m["new"]) for m in moves] == [(0.5, 0.6), (0.6, 0.7)]

        # The next alert is judged, and annotated, at the adapted threshold. The receiver
        # hears of it only once it heard the first one resolve (same fingerprint).
        await eventually(
            lambda: any(p["status"] == "resolved" for p in received(httpserver)),
            what="the first alert's resolution",
        )
        await produce(broker.bootstrap, topic, [point(206, 400.0)])

        def second() -> dict[str, Any] | None:
            alerts = firing_alerts(httpserver)
            return alerts[1] if len(alerts) > 1 else None

        assert (await eventually(second, what="the next alert"))["annotations"][
            "threshold"
        ] == "0.7"

        # Each label is on the feedback topic, keyed by the stream.
        records = await consume(broker.bootstrap, config["topics"]["feedback"], 4)
        assert {record.key for record in records} == {STREAM.encode()}
        bodies = [orjson.loads(record.value) for record in records]
        assert sorted(b["source"] for b in bodies) == ["api", "api", "link", "link"]
        assert {(b["fingerprint"], b["label"], b["detector"]) for b in bodies} == {
            (fp, "false_positive", "model")
        }
        assert next(b for b in bodies if b["source"] == "api")["by"] == "test"
    finally:
        assert worker.stop() == 0
