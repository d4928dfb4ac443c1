"""Alertmanager's API v2 driven by the real `amtool` (Alertmanager 0.25's, as Debian
ships it) against a running worker: alerts queried with their silenced and inhibited
state, silences added, listed and expired with the bearer token."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from pytest_httpserver import HTTPServer

from anomalyd.worker.kafka.admin import free_port
from anomalyd.worker.kafka.broker import EmbeddedBroker
from helpers import WorkerProcess, eventually, produce, webhook_receiver, worker_config

AMTOOL = shutil.which("amtool")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        AMTOOL is None, reason="amtool is not installed (Debian: prometheus-alertmanager)"
    ),
]

TOKEN = "amtool-token"
CRITICAL = {"name": "LatencyHigh", "type": "above", "threshold": 500, "severity": "critical"}
WARNING = {"name": "LatencyElevated", "type": "above", "threshold": 100, "severity": "warning"}
#: While a stream's critical alert fires, its warning is muted.
INHIBIT = {
    "source_matchers": ['severity="critical"'],
    "target_matchers": ['severity="warning"'],
    "equal": ["stream"],
}


def spike(stream: str, start: float, high: float) -> list[dict[str, Any]]:
    return [
        {"stream": stream, "ts": start, "value": 50.0},
        {"stream": stream, "ts": start + 1, "value": high},
    ]


@pytest.fixture
def worker(
    broker: EmbeddedBroker, httpserver: HTTPServer, tmp_path: Path
) -> Iterator[WorkerProcess]:
    route = {"receiver": "oncall", "group_by": ["alertname", "stream"], "group_wait": "0s"}
    path, config = worker_config(
        tmp_path,
        broker.bootstrap,
        rules=[CRITICAL, WARNING],
        receivers=[webhook_receiver(httpserver, "oncall")],
        route=route,
        inhibit_rules=[INHIBIT],
        http={"api_token": TOKEN},
    )
    started = WorkerProcess(path, config, tmp_path / "worker.log").start()
    yield started
    started.stop()


def amtool(
    worker: WorkerProcess, *args: str, auth: Path | None = None
) -> subprocess.CompletedProcess[str]:
    assert AMTOOL is not None
    command = [AMTOOL, f"--alertmanager.url={worker.http}", "--no-version-check", *args]
    if auth is not None:
        command.append(f"--http.config.file={auth}")
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def amtool_json(worker: WorkerProcess, *args: str) -> Any:
    done = amtool(worker, *args, "-o", "json")
    assert done.returncode == 0, done.stderr
    return orjson.loads(done.stdout)


def by_stream(alerts: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(a["labels"]["stream"], a["labels"]["alertname"]): a for a in alerts}


def v2_alerts(worker: WorkerProcess, query: str = "") -> list[dict[str, Any]]:
    status, body = worker.get(f"/api/v2/alerts{query}")
    assert status == 200, body
    alerts: list[dict[str, Any]] = orjson.loads(body)
    return alerts


def muted(worker: WorkerProcess, reason: str) -> float:
    sample = f'anomalyd_notifications_muted_total{{reason="{reason}"}} '
    for line in worker.get("/metrics")[1].decode().splitlines():
        if line.startswith(sample):
            return float(line.removeprefix(sample))
    return -1.0


async def test_amtool_queries_alerts_and_adds_lists_and_expires_silences(
    broker: EmbeddedBroker, worker: WorkerProcess, tmp_path: Path
) -> None:
    await worker.wait_ready()
    assert worker.get("/-/healthy") == (200, b"OK")
    assert worker.get("/-/ready") == (200, b"OK")
    assert worker.call("HEAD", "/-/healthy")[0] == 200  # probes may ask with HEAD
    assert (muted(worker, "silenced"), muted(worker, "inhibited")) == (0.0, 0.0)
    events = worker.config["topics"]["events"]
    now = time.time()
    # a: warning only; b: critical, so its warning is inhibited.
    await produce(
        broker.bootstrap, events, [*spike("a.latency", now, 200.0), *spike("b.latency", now, 900.0)]
    )
    wanted = {
        ("a.latency", "LatencyElevated"),
        ("b.latency", "LatencyElevated"),
        ("b.latency", "LatencyHigh"),
    }
    await eventually(
        lambda: set(by_stream(v2_alerts(worker))) == wanted, what="three alerts in the API"
    )

    # amtool shows the active alerts, or those of the states it is asked for. (b's
    # critical alert inhibits once delivery holds it, as delivery's flushes see it.)
    await eventually(
        lambda: (
            set(by_stream(amtool_json(worker, "alert", "query", "--inhibited")))
            == {("b.latency", "LatencyElevated")}
        ),
        what="b's warning inhibited",
    )
    shown = by_stream(amtool_json(worker, "alert", "query"))
    assert set(shown) == wanted - {("b.latency", "LatencyElevated")}
    table = amtool(worker, "alert", "query")  # the default output: a table
    assert table.returncode == 0, table.stderr
    assert table.stdout.count("LatencyHigh") == 1, table.stdout
    every = by_stream(amtool_json(worker, "alert", "query", "--active", "--inhibited"))
    inhibited = every[("b.latency", "LatencyElevated")]
    critical = every[("b.latency", "LatencyHigh")]
    assert inhibited["status"] == {
        "state": "suppressed",
        "silencedBy": [],
        "inhibitedBy": [critical["fingerprint"]],
    }
    assert critical["status"]["state"] == "active"
    assert critical["receivers"] == [{"name": "oncall"}]
    assert critical["endsAt"].startswith("0001-01-01T00:00:00")  # firing: no end
    assert critical["updatedAt"].startswith(time.strftime("%Y-"))  # when it was written
    only_b = amtool_json(worker, "alert", "query", "stream=b.latency", "alertname=~Latency.*")
    assert [a["labels"]["alertname"] for a in only_b] == ["LatencyHigh"]

    # silences need the token
    args = ["silence", "add", "stream=a.latency", "--comment=maintenance", "--duration=1h"]
    refused = amtool(worker, *args)
    assert refused.returncode != 0
    assert "401" in refused.stderr or "nauthorized" in refused.stderr, refused.stderr
    auth = tmp_path / "amtool-http.yml"
    auth.write_text(f"authorization:\n  type: Bearer\n  credentials: {TOKEN}\n")
    added = amtool(worker, *args, "--author=oncall", auth=auth)
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.strip()

    [listed] = amtool_json(worker, "silence", "query")
    assert listed["id"] == silence_id
    assert listed["status"] == {"state": "active"}
    assert listed["createdBy"] == "oncall"
    assert listed["matchers"] == [
        {"name": "stream", "value": "a.latency", "isRegex": False, "isEqual": True}
    ]
    assert amtool_json(worker, "silence", "query", "stream=b.latency") == []
    silenced = amtool_json(worker, "alert", "query", "--silenced")
    assert [a["labels"]["stream"] for a in silenced] == ["a.latency"]
    assert silenced[0]["status"]["silencedBy"] == [silence_id]
    assert ("a.latency", "LatencyElevated") not in by_stream(amtool_json(worker, "alert", "query"))

    # a new alert under the silence is muted at its flush, and counted (it inhibits a's
    # warning from now on)
    await produce(broker.bootstrap, events, spike("a.latency", now + 5, 900.0))
    await eventually(lambda: muted(worker, "silenced") >= 1, what="the silence counted")

    assert amtool(worker, "silence", "expire", silence_id).returncode != 0  # no token
    expired = amtool(worker, "silence", "expire", silence_id, auth=auth)
    assert expired.returncode == 0, expired.stderr
    assert amtool_json(worker, "silence", "query") == []
    [gone] = amtool_json(worker, "silence", "query", "--expired")
    assert (gone["id"], gone["status"]["state"]) == (silence_id, "expired")
    back = by_stream(amtool_json(worker, "alert", "query"))
    assert back[("a.latency", "LatencyHigh")]["status"]["state"] == "active"


async def test_status_receivers_groups_and_reload_in_alertmanagers_shapes(
    broker: EmbeddedBroker, worker: WorkerProcess
) -> None:
    await worker.wait_ready()
    status, body = worker.get("/api/v2/status")
    assert status == 200
    shown = orjson.loads(body)
    assert shown["cluster"]["status"] == "ready"
    assert set(shown["versionInfo"]) >= {"version", "revision", "goVersion"}
    assert "oncall" in shown["config"]["original"]
    assert "127.0.0.1" not in shown["config"]["original"]  # no receiver URL
    assert orjson.loads(worker.get("/api/v2/receivers")[1]) == [{"name": "oncall"}]

    events = worker.config["topics"]["events"]
    await produce(broker.bootstrap, events, spike("c.latency", time.time(), 900.0))
    uninhibited = "?inhibited=false&filter=stream%3D%22c.latency%22"
    # Alerts are listed as the alerts topic has them, inhibition decided as delivery's
    # groups hold them (its next flush): a moment later on a loaded machine.
    await eventually(
        lambda: len(v2_alerts(worker)) == 2 and len(v2_alerts(worker, uninhibited)) == 1,
        what="two alerts of c, the warning inhibited",
    )
    groups = orjson.loads(worker.get("/api/v2/alerts/groups")[1])
    assert sorted((g["labels"]["alertname"], g["receiver"]["name"]) for g in groups) == [
        ("LatencyElevated", "oncall"),
        ("LatencyHigh", "oncall"),
    ]
    assert all(g["labels"]["stream"] == "c.latency" for g in groups)
    assert v2_alerts(worker, "?receiver=nobody") == []
    assert len(v2_alerts(worker, "?receiver=on.*")) == 2
    # by fingerprint: between two calls updatedAt may move from when delivery held the alert
    # to its record's time (the topic's record wins once the view has read it)
    assert [a["fingerprint"] for a in v2_alerts(worker, uninhibited)] == [
        a["fingerprint"] for a in v2_alerts(worker) if a["labels"]["alertname"] == "LatencyHigh"
    ]
    assert worker.get("/api/v2/alerts?filter=nonsense")[0] == 400
    assert worker.get("/api/v2/alerts?active=maybe")[0] == 400

    assert worker.call("POST", "/-/reload")[0] == 401
    status, body = worker.call("POST", "/-/reload", token=TOKEN)
    assert status == 200, body
    # the existing API is still there
    assert worker.get("/api/alerts")[0] == 200
    assert worker.get("/api/silences")[0] == 200


def owned_partitions(worker: WorkerProcess) -> int:
    """How many partitions of the events topic the worker consumes, once ready."""
    worker.assert_running()
    status, body = worker.get("/api/status")
    if status != 200:
        return 0
    lag = orjson.loads(body)["consumer"]["lag"] or []
    topic = worker.config["topics"]["events"]
    return len({row["partition"] for row in lag if row["topic"] == topic})


def stream_owner(worker: WorkerProcess, stream: str) -> str | None:
    """The worker `/api/status?stream=` names as the stream's owner."""
    body = orjson.loads(worker.get(f"/api/status?stream={stream}")[1])
    streams = body["streams"]
    if streams["items"]:
        owner: str = streams["items"][0]["worker"]
        assert owner == body["worker"]
        return owner
    elsewhere: str | None = streams["elsewhere"]["worker"]
    return elsewhere


async def test_two_workers_answer_with_the_same_alerts_and_silences(
    broker: EmbeddedBroker, httpserver: HTTPServer, tmp_path: Path
) -> None:
    path, config = worker_config(
        tmp_path,
        broker.bootstrap,
        rules=[CRITICAL],
        receivers=[webhook_receiver(httpserver, "oncall")],
        http={"api_token": TOKEN},
    )
    other_config = {**config, "http": {**config["http"], "port": free_port()}}
    other_path = tmp_path / "other.yaml"
    other_path.write_text(yaml.safe_dump(other_config))
    workers = [
        WorkerProcess(path, config, tmp_path / "one.log").start(),
        WorkerProcess(other_path, other_config, tmp_path / "two.log").start(),
    ]
    try:
        await eventually(
            lambda: all(owned_partitions(worker) > 0 for worker in workers),
            timeout=60,
            interval=0.2,
            what="the two workers sharing the partitions",
        )
        streams = [f"s{i}.latency" for i in range(12)]
        now = time.time()
        events = [event for stream in streams for event in spike(stream, now, 900.0)]
        await produce(broker.bootstrap, config["topics"]["events"], events)

        def same_alerts() -> list[dict[str, Any]] | None:
            one, two = (sorted(v2_alerts(w), key=lambda a: a["fingerprint"]) for w in workers)
            for alerts in (one, two):
                for alert in alerts:
                    del alert["updatedAt"]  # each worker's read of the record
            return one if len(one) == len(streams) and one == two else None

        alerts = await eventually(same_alerts, what="the same twelve alerts on both workers")
        assert sorted(a["labels"]["stream"] for a in alerts) == sorted(streams)
        fingerprints = {a["fingerprint"] for a in alerts}
        for worker in workers:  # and anomalyd's own /api/alerts lists them all too
            active = orjson.loads(worker.get("/api/alerts")[1])["active"]
            assert {a["fingerprint"] for a in active} == fingerprints

        # each stream's owner, as either worker names it: both workers own some
        names = {orjson.loads(w.get("/api/v2/status")[1])["cluster"]["name"] for w in workers}
        owners = {stream: stream_owner(workers[0], stream) for stream in streams}
        assert {stream: stream_owner(workers[1], stream) for stream in streams} == owners
        assert set(owners.values()) == names

        # a silence made on one worker mutes the alert on both
        auth = tmp_path / "amtool-http.yml"
        auth.write_text(f"authorization:\n  credentials: {TOKEN}\n")
        args = ["silence", "add", "stream=s0.latency", "--comment=one", "--duration=1h"]
        added = amtool(workers[0], *args, auth=auth)
        assert added.returncode == 0, added.stderr
        silence_id = added.stdout.strip()

        def silenced_on(worker: WorkerProcess) -> list[str]:
            return [
                a["labels"]["stream"]
                for a in amtool_json(worker, "alert", "query", "--silenced")
                if a["status"]["silencedBy"] == [silence_id]
            ]

        await eventually(
            lambda: all(silenced_on(w) == ["s0.latency"] for w in workers),
            what="the silence applied on both workers",
        )
        assert [s["id"] for s in amtool_json(workers[1], "silence", "query")] == [silence_id]
    finally:
        for worker in workers:
            worker.stop()
