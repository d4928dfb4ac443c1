"""Routing, grouping, silences and restarts end to end: a real worker process, the
embedded broker, real HTTP receivers on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from pytest_httpserver import HTTPServer

from anomalyd.worker.kafka.broker import EmbeddedBroker
from helpers import WorkerProcess, eventually, produce, received, webhook_receiver, worker_config

pytestmark = pytest.mark.integration

TOKEN = "s3cret-token"
CRITICAL = {"name": "LatencyHigh", "type": "above", "threshold": 500, "severity": "critical"}
WARNING = {
    "name": "LatencyElevated",
    "type": "above",
    "threshold": 100,
    "severity": "warning",
    "streams": ["search.*"],
}


def alerts_in(payload: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((a["labels"]["stream"], a["status"]) for a in payload["alerts"])


def spike(stream: str, start: float, high: float = 900.0) -> list[dict[str, Any]]:
    return [
        {"stream": stream, "ts": start, "value": 50.0},
        {"stream": stream, "ts": start + 1, "value": high},
    ]


def calm(stream: str, start: float) -> list[dict[str, Any]]:
    return [{"stream": stream, "ts": start, "value": 50.0}]


def call(
    worker: WorkerProcess, method: str, path: str, body: Any = None, token: str | None = TOKEN
) -> tuple[int, Any]:
    status, response = worker.call(method, path, body, token)
    return status, orjson.loads(response)


def metric(worker: WorkerProcess, line: bytes) -> bool:
    return line in worker.get("/metrics")[1]


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop()


def start(
    started: list[WorkerProcess], path: Path, config: dict[str, Any], tmp_path: Path
) -> WorkerProcess:
    worker = WorkerProcess(path, config, tmp_path / f"worker{len(started)}.log").start()
    started.append(worker)
    return worker


async def test_critical_alerts_page_and_the_rest_go_to_tickets(
    broker: EmbeddedBroker, httpserver: HTTPServer, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    route = {
        "receiver": "tickets",
        "group_by": ["alertname", "stream"],
        "group_wait": "0s",
        "group_interval": "1s",
        "routes": [{"receiver": "pager", "matchers": ['severity="critical"']}],
    }
    path, config = worker_config(
        tmp_path,
        broker.bootstrap,
        rules=[CRITICAL, WARNING],
        receivers=[webhook_receiver(httpserver, "pager"), webhook_receiver(httpserver, "tickets")],
        route=route,
    )
    worker = start(workers, path, config, tmp_path)
    await worker.wait_ready()
    now = time.time()
    events = [*spike("checkout.latency_ms", now, 900), *spike("search.latency_ms", now, 300)]
    await produce(broker.bootstrap, config["topics"]["events"], events)

    pages = await eventually(lambda: received(httpserver, "/pager"), what="the page")
    tickets = await eventually(lambda: received(httpserver, "/tickets"), what="the ticket")
    assert [alerts_in(p) for p in pages] == [[("checkout.latency_ms", "firing")]]
    assert pages[0]["commonLabels"]["severity"] == "critical"
    assert pages[0]["groupKey"] == (
        '{}/{severity="critical"}:{alertname="LatencyHigh", stream="checkout.latency_ms"}'
    )
    assert [alerts_in(t) for t in tickets] == [[("search.latency_ms", "firing")]]
    assert tickets[0]["commonLabels"]["severity"] == "warning"
    assert tickets[0]["groupKey"].startswith("{}:")


async def test_a_rules_team_label_routes_it_and_its_runbook_url_reaches_the_webhook(
    broker: EmbeddedBroker, httpserver: HTTPServer, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    """Rule `labels:` are routed on; rule `annotations:`, rendered, arrive in the payload."""
    rule = {
        **CRITICAL,
        "labels": {"team": "payments"},
        "annotations": {
            "runbook_url": "https://runbooks.example.com/{{ $labels.alertname }}",
            "description": "{{ $labels.stream }} at {{ $value }} ms",
        },
    }
    route = {
        "receiver": "everyone",
        "group_wait": "0s",
        "routes": [{"receiver": "payments", "matchers": ['team="payments"']}],
    }
    path, config = worker_config(
        tmp_path,
        broker.bootstrap,
        rules=[rule],
        receivers=[
            webhook_receiver(httpserver, "payments"),
            webhook_receiver(httpserver, "everyone"),
        ],
        route=route,
    )
    worker = start(workers, path, config, tmp_path)
    await worker.wait_ready()
    await produce(
        broker.bootstrap, config["topics"]["events"], spike("pay.latency_ms", time.time())
    )

    [payload] = await eventually(lambda: received(httpserver, "/payments"), what="the page")
    [alert] = payload["alerts"]
    assert alert["labels"]["team"] == "payments"
    assert alert["annotations"]["runbook_url"] == "https://runbooks.example.com/LatencyHigh"
    assert alert["annotations"]["description"] == "pay.latency_ms at 900 ms"
    assert payload["commonAnnotations"]["runbook_url"] == alert["annotations"]["runbook_url"]
    assert received(httpserver, "/everyone") == []


async def test_a_group_of_three_alerts_arrives_in_one_payload_after_group_wait(
    broker: EmbeddedBroker, httpserver: HTTPServer, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    route = {"receiver": "oncall", "group_by": ["alertname"], "group_wait": "2s"}
    path, config = worker_config(
        tmp_path,
        broker.bootstrap,
        rules=[CRITICAL],
        receivers=[webhook_receiver(httpserver, "oncall")],
        route=route,
    )
    worker = start(workers, path, config, tmp_path)
    await worker.wait_ready()
    now = time.time()
    streams = ["api.latency_ms", "db.latency_ms", "web.latency_ms"]
    produced_at = time.monotonic()
    await produce(
        broker.bootstrap, config["topics"]["events"], [e for s in streams for e in spike(s, now)]
    )

    [payload] = await eventually(lambda: received(httpserver, "/oncall"), what="the group")
    waited = time.monotonic() - produced_at
    assert alerts_in(payload) == [(s, "firing") for s in streams]
    assert payload["groupLabels"] == {"alertname": "LatencyHigh"}
    assert payload["groupKey"] == '{}:{alertname="LatencyHigh"}'
    assert waited >= 1.9  # group_wait held the first alert for its company
    # Counted once the receiver has answered: the receiver may see the payload first.
    await eventually(
        lambda: metric(
            worker,
            b'anomalyd_notifications_total{reason="first_notification",receiver="oncall"} 1.0',
        ),
        what="the notification counted",
    )
    assert len(received(httpserver, "/oncall")) == 1


async def test_a_silence_from_the_api_mutes_and_what_was_notified_still_resolves(
    broker: EmbeddedBroker, httpserver: HTTPServer, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    route = {
        "receiver": "oncall",
        "group_by": ["alertname", "stream"],
        "group_wait": "0s",
        "group_interval": "1s",
    }
    path, config = worker_config(
        tmp_path,
        broker.bootstrap,
        rules=[CRITICAL],
        receivers=[webhook_receiver(httpserver, "oncall")],
        route=route,
        http={"api_token": TOKEN},
    )
    worker = start(workers, path, config, tmp_path)
    await worker.wait_ready()
    events = config["topics"]["events"]
    now = time.time()
    await produce(broker.bootstrap, events, spike("a.latency", now))
    await eventually(lambda: received(httpserver, "/oncall"), what="the first page")

    silence = {
        "matchers": ['alertname="LatencyHigh"'],
        "endsAt": "2099-01-01T00:00:00Z",
        "createdBy": "test",
        "comment": "maintenance",
    }
    assert call(worker, "POST", "/api/silences", silence, token="wrong")[0] == 401
    assert call(worker, "POST", "/api/silences", silence, token=None)[0] == 401
    status, created = call(worker, "POST", "/api/silences", silence)
    assert status == 200, created
    silence_id = created["silenceID"]
    [listed] = call(worker, "GET", "/api/silences", token=None)[1]
    assert listed["id"] == silence_id
    assert listed["status"] == {"state": "active"}
    assert listed["matchers"] == [
        {"name": "alertname", "value": "LatencyHigh", "isRegex": False, "isEqual": True}
    ]

    # b fires and resolves under the silence; a, notified before it, resolves
    await produce(
        broker.bootstrap, events, [*spike("b.latency", now + 5), *calm("b.latency", now + 7)]
    )
    await produce(broker.bootstrap, events, calm("a.latency", now + 8))

    def settled() -> bool:
        return metric(
            worker, b'anomalyd_alerts_total{detector="rules",status="resolved"} 2.0'
        ) and metric(worker, b'anomalyd_notify_groups{receiver="oncall"} 0.0')

    await eventually(settled, what="both alerts resolved and every group flushed")
    payloads = received(httpserver, "/oncall")
    assert [alerts_in(p) for p in payloads] == [
        [("a.latency", "firing")],
        [("a.latency", "resolved")],
    ]

    assert call(worker, "DELETE", f"/api/silences/{silence_id}", token="wrong")[0] == 401
    status, body = call(worker, "DELETE", f"/api/silences/{silence_id}")
    assert status == 200, body
    assert call(worker, "DELETE", f"/api/silences/{silence_id}")[0] == 409
    assert call(worker, "DELETE", "/api/silences/nope")[0] == 404

    # API silences survive a restart (they live in the silences topic)
    worker.stop()
    again = start(workers, path, config, tmp_path)
    await again.wait_ready()
    [after] = call(again, "GET", "/api/silences", token=None)[1]
    assert (after["id"], after["status"]["state"]) == (silence_id, "expired")


async def test_writes_are_refused_without_a_configured_token(
    broker: EmbeddedBroker, httpserver: HTTPServer, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    path, config = worker_config(
        tmp_path,
        broker.bootstrap,
        rules=[CRITICAL],
        receivers=[webhook_receiver(httpserver, "oncall")],
    )
    worker = start(workers, path, config, tmp_path)
    await worker.wait_ready()
    silence = {"matchers": ["a=b"], "endsAt": "2099-01-01T00:00:00Z"}
    status, body = call(worker, "POST", "/api/silences", silence, token="anything")
    assert status == 403
    assert "api_token" in body["error"]
    assert call(worker, "GET", "/api/silences", token=None) == (200, [])


async def test_a_worker_restart_in_the_middle_of_a_group_does_not_page_again(
    broker: EmbeddedBroker, httpserver: HTTPServer, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    route = {
        "receiver": "oncall",
        "group_by": ["alertname"],
        "group_wait": "0s",
        "group_interval": "20s",
    }
    path, config = worker_config(
        tmp_path,
        broker.bootstrap,
        rules=[CRITICAL],
        receivers=[webhook_receiver(httpserver, "oncall")],
        route=route,
    )
    worker = start(workers, path, config, tmp_path)
    await worker.wait_ready()
    events = config["topics"]["events"]
    now = time.time()
    await produce(broker.bootstrap, events, spike("a.latency", now))
    [first] = await eventually(lambda: received(httpserver, "/oncall"), what="the first page")
    assert alerts_in(first) == [("a.latency", "firing")]
    first_at = time.monotonic()

    await produce(broker.bootstrap, events, spike("b.latency", now + 5))  # waits 20 s ...
    await eventually(
        lambda: metric(worker, b'anomalyd_notify_queued_alerts{receiver="oncall"} 2.0'),
        what="b held in the group",
    )
    worker.kill()  # ... and the worker dies meanwhile, without committing or flushing

    again = start(workers, path, config, tmp_path)
    await again.wait_ready()
    payloads = await eventually(
        lambda: len(received(httpserver, "/oncall")) >= 2 and received(httpserver, "/oncall"),
        timeout=60,
        what="the update after the restart",
    )
    assert [alerts_in(p) for p in payloads] == [
        [("a.latency", "firing")],
        [("a.latency", "firing"), ("b.latency", "firing")],  # a is not paged on its own again
    ]
    assert time.monotonic() - first_at >= 19  # the group interval held across the restart
    assert any(line.get("event") == "notify_groups_restored" for line in again.log_lines())
