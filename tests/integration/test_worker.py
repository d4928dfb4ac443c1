"""The daemon end to end: a real worker process, the embedded broker, a real HTTP receiver."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from anomalyd.worker.kafka.broker import EmbeddedBroker
from helpers import WorkerProcess, consume, eventually, produce, received, worker_config

pytestmark = pytest.mark.integration

SPIKE_RULE = {"name": "LatencyHigh", "type": "above", "threshold": 500, "severity": "critical"}


def webhook(httpserver: HTTPServer) -> dict[str, Any]:
    return {"type": "webhook", "name": "oncall", "url": httpserver.url_for("/hook")}


def series(
    stream: str, values: list[float], start: float | None = None, **extra: Any
) -> list[dict[str, Any]]:
    start = time.time() if start is None else start
    return [{"stream": stream, "ts": start + i, "value": v, **extra} for i, v in enumerate(values)]


@pytest.fixture
def worker_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[WorkerProcess] = []

    def start(bootstrap: str | None, **kwargs: Any) -> WorkerProcess:
        path, config = worker_config(tmp_path, bootstrap, **kwargs)
        worker = WorkerProcess(path, config, tmp_path / f"worker{len(started)}.log").start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


async def test_spike_is_pushed_to_the_webhook_then_resolved(
    broker: EmbeddedBroker, httpserver: HTTPServer, worker_factory: Any
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    worker = worker_factory(broker.bootstrap, rules=[SPIKE_RULE], receivers=[webhook(httpserver)])
    await worker.wait_ready()
    # Ready means judging; the alerts' groups may be restored a moment later, and an
    # alert written before that is taken on read-back (checked below: the fast door).
    await eventually(
        lambda: any(line.get("event") == "notify_groups_restored" for line in worker.log_lines()),
        what="the notification groups restored",
    )

    events = series("checkout.latency_ms", [230, 241, 228, 1250, 236, 229], labels={"region": "eu"})
    await produce(broker.bootstrap, worker.config["topics"]["events"], events)

    payloads = await eventually(
        lambda: len(received(httpserver)) >= 2 and received(httpserver), what="2 webhooks"
    )
    firing, resolved = payloads
    assert firing["version"] == "4"
    assert firing["status"] == "firing"
    assert firing["receiver"] == "oncall"
    assert firing["groupLabels"] == {"alertname": "LatencyHigh", "stream": "checkout.latency_ms"}
    assert firing["groupKey"] == '{}:{alertname="LatencyHigh", stream="checkout.latency_ms"}'
    [alert] = firing["alerts"]
    assert alert["labels"] == {
        "alertname": "LatencyHigh",
        "stream": "checkout.latency_ms",
        "severity": "critical",
        "detector": "rules",
        "region": "eu",
    }
    assert alert["annotations"]["value"] == "1250"
    assert alert["annotations"]["expected"] == "<= 500"
    assert alert["generatorURL"].endswith(f"/api/alerts/{alert['fingerprint']}")
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert resolved["status"] == "resolved"
    assert resolved["alerts"][0]["fingerprint"] == alert["fingerprint"]
    assert resolved["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
    assert len(received(httpserver)) == 2  # nothing else fired on normal points

    status, metrics = worker.get("/metrics")
    assert status == 200
    assert b'anomalyd_alerts_total{detector="rules",status="firing"} 1.0' in metrics
    assert b'anomalyd_deliveries_total{outcome="ok",receiver="oncall"} 2.0' in metrics
    # Written here to a partition this worker reads: taken in on the broker's
    # acknowledgement, not read back (where they are skipped as replays).
    assert b'anomalyd_notify_alerts_taken_total{via="write"} 2.0' in metrics
    assert b'anomalyd_notify_alerts_taken_total{via="read"} 0.0' in metrics


async def test_events_keyed_otherwise_are_rekeyed_by_stream_and_counted(
    broker: EmbeddedBroker, httpserver: HTTPServer, worker_factory: Any
) -> None:
    """A producer keying by tenant, not stream: the events take the by-stream hop (so one
    worker still judges each stream, in order) and the metric says why; events keyed by
    their stream are judged where they are."""
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    worker = worker_factory(broker.bootstrap, rules=[SPIKE_RULE], receivers=[webhook(httpserver)])
    await worker.wait_ready()
    topic = worker.config["topics"]["events"]
    by_tenant = series("checkout.latency_ms", [230, 241, 1250, 236])
    keyed = series("search.latency_ms", [120, 118, 900])
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        for event in by_tenant:
            await producer.send_and_wait(topic, orjson.dumps(event), key=b"tenant-7")
        for event in keyed:
            await producer.send_and_wait(topic, orjson.dumps(event), key=event["stream"].encode())
    finally:
        await producer.stop()

    payloads = await eventually(
        lambda: len(received(httpserver)) >= 3 and received(httpserver), what="3 webhooks"
    )
    streams = {(p["status"], p["groupLabels"]["stream"]) for p in payloads}
    assert streams == {
        ("firing", "checkout.latency_ms"),
        ("resolved", "checkout.latency_ms"),
        ("firing", "search.latency_ms"),
    }
    metrics = worker.get("/metrics")[1]
    assert b'anomalyd_events_rekeyed_total{reason="key"} 4.0' in metrics
    assert b'anomalyd_events_rekeyed_total{reason="partition"} 0.0' in metrics
    # Both topics' partitions that carried events report their lag: all read.
    lags = re.findall(
        rb'^anomalyd_consumer_lag\{partition="\d+",topic="([^"]+)"\} (\S+)$', metrics, re.M
    )
    assert {topic for topic, _ in lags} == {
        topic.encode(),
        f"{worker.config['app']['id']}-events-by-stream".encode(),
    }
    assert {lag for _, lag in lags} == {b"0.0"}


async def test_malformed_events_go_to_the_dead_letter_topic_and_the_worker_goes_on(
    broker: EmbeddedBroker, httpserver: HTTPServer, worker_factory: Any
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    worker = worker_factory(
        broker.bootstrap,
        rules=[SPIKE_RULE],
        receivers=[webhook(httpserver)],
        ingest={"max_event_bytes": 1024},
    )
    await worker.wait_ready()
    topics = worker.config["topics"]
    bad = [
        b"not json at all",
        b'{"stream": "a", "ts": 1, "value": "high"}',
        b'{"ts": 1, "value": 3}',
        b'{"stream": "a", "ts": 1, "value": NaN}',
        b'{"stream": "a", "ts": 1, "value": 1e999}',
        b'{"stream": "a", "ts": 1, "value": 1, "labels": {"x": "a\\r\\nBcc: evil"}}',
        b'{"stream": "a", "ts": 1, "value": 1, "extra": true}',
        orjson.dumps({"stream": "a", "ts": 1, "value": 1, "labels": {"big": "x" * 2000}}),
    ]
    await produce(broker.bootstrap, topics["events"], [*bad, *series("after.bad", [100, 900])])

    dead = await consume(broker.bootstrap, topics["events_dlq"], len(bad))
    assert sorted(record.value for record in dead) == sorted(bad)  # original bytes, untouched
    reasons = {record.value: dict(record.headers)["reason"].decode() for record in dead}
    assert reasons[bad[0]].startswith("invalid_json")
    assert reasons[bad[1]].startswith("bad_value")
    assert reasons[bad[2]].startswith("missing_stream")
    assert reasons[bad[3]].startswith("invalid_json")  # NaN is not JSON
    assert reasons[bad[5]].startswith("bad_labels")
    assert reasons[bad[6]].startswith("unknown_field")
    assert reasons[bad[7]].startswith("oversized")

    # The valid events behind the garbage are still scored.
    payloads = await eventually(lambda: received(httpserver), what="the spike's webhook")
    assert payloads[0]["commonLabels"]["stream"] == "after.bad"
    metrics = worker.get("/metrics")[1]
    assert b'anomalyd_invalid_events_total{reason="invalid_json"} 3.0' in metrics
    worker.assert_running()


async def test_absence_fires_when_a_stream_goes_silent_and_resolves_when_it_returns(
    broker: EmbeddedBroker, httpserver: HTTPServer, worker_factory: Any
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    rule = {"name": "Silent", "type": "absence", "for": "1s", "streams": ["heartbeat.*"]}
    worker = worker_factory(
        broker.bootstrap,
        rules=[rule],
        receivers=[webhook(httpserver)],
        alerting={"absence_check_interval": "100ms"},
    )
    await worker.wait_ready()
    topic = worker.config["topics"]["events"]
    await produce(broker.bootstrap, topic, series("heartbeat.db", [1.0]))

    firing = await eventually(lambda: received(httpserver), what="the absence alert")
    assert firing[0]["status"] == "firing"
    assert firing[0]["commonLabels"]["alertname"] == "Silent"
    assert firing[0]["commonLabels"]["stream"] == "heartbeat.db"

    await produce(broker.bootstrap, topic, series("heartbeat.db", [1.0]))
    payloads = await eventually(
        lambda: len(received(httpserver)) >= 2 and received(httpserver), what="resolution"
    )
    assert payloads[1]["status"] == "resolved"


async def test_failed_deliveries_are_retried_then_dead_lettered(
    broker: EmbeddedBroker, httpserver: HTTPServer, worker_factory: Any
) -> None:
    # The first answer is 503 (retried), later ones 200; a second receiver always 410 (not
    # retried); a third answers 302: not followed (a GET there would answer 200), not retried.
    answers = iter([503])

    def flaky(request: Request) -> Response:
        return Response("busy", status=next(answers, 200))

    httpserver.expect_request("/hook", method="POST").respond_with_handler(flaky)
    httpserver.expect_request("/gone", method="POST").respond_with_data("gone", status=410)
    new_home = httpserver.url_for("/new-home")
    httpserver.expect_request("/moved").respond_with_data("", 302, {"Location": new_home})
    httpserver.expect_request("/new-home").respond_with_data("ok")
    worker = worker_factory(
        broker.bootstrap,
        rules=[SPIKE_RULE],
        receivers=[
            webhook(httpserver),
            {"type": "webhook", "name": "retired", "url": httpserver.url_for("/gone")},
            {"type": "webhook", "name": "moved", "url": httpserver.url_for("/moved")},
        ],
    )
    await worker.wait_ready()
    topics = worker.config["topics"]
    await produce(broker.bootstrap, topics["events"], series("api.latency_ms", [100, 900]))

    def hook_statuses() -> list[int]:
        return [
            response.status_code for request, response in httpserver.log if request.path == "/hook"
        ]

    await eventually(lambda: 200 in hook_statuses(), what="delivery after the 503")
    assert hook_statuses() == [503, 200]

    letters = await consume(broker.bootstrap, topics["alerts_dlq"], 2)
    bodies = {body["receiver"]: body for body in (orjson.loads(r.value) for r in letters)}
    assert bodies["retired"]["reason"] == "not retryable: http_410"
    assert bodies["retired"]["detail"] == "the receiver answered 410: 'gone'"
    assert bodies["retired"]["alerts"][0]["labels"]["stream"] == "api.latency_ms"
    assert bodies["moved"]["reason"] == "not retryable: http_302"
    assert bodies["moved"]["detail"] == f"redirect 302 to {httpserver.url_for('').rstrip('/')}/…"
    assert "/new-home" not in [request.path for request, _ in httpserver.log]
    metrics = worker.get("/metrics")[1]
    assert b'anomalyd_deliveries_total{outcome="http_503",receiver="oncall"} 1.0' in metrics
    assert b'anomalyd_notifications_dead_lettered_total{receiver="retired"} 1.0' in metrics


async def test_worker_starts_the_embedded_broker_and_stops_cleanly(
    httpserver: HTTPServer, worker_factory: Any
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    worker = worker_factory(None, rules=[SPIKE_RULE], receivers=[webhook(httpserver)])
    await worker.wait_ready()
    port = worker.config["kafka"]["embedded"]["port"]
    bootstrap = f"127.0.0.1:{port}"

    await produce(bootstrap, worker.config["topics"]["events"], series("solo", [1, 1000]))
    await eventually(lambda: received(httpserver), what="the webhook")

    assert worker.get("/healthz") == (200, b'{"status":"ok"}')
    assert worker.get("/readyz") == (200, b'{"status":"ready"}')
    lines = worker.log_lines()
    assert all(line.get("event") != "<not json>" for line in lines), "every output line is JSON"
    assert any(line.get("event") == "embedded_broker_started" for line in lines)
    assert worker.stop() == 0
    from anomalyd.worker.kafka.admin import is_listening

    assert not is_listening("127.0.0.1", port), "the embedded broker stops with the worker"
