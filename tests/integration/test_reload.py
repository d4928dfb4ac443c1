"""Hot reload of a running worker: an atomic rewrite of its config file lowers a
threshold without a restart; broken edits are rejected and the worker goes on with the
config it had; SIGHUP reloads too."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from pytest_httpserver import HTTPServer

from anomalyd.worker.kafka.broker import EmbeddedBroker
from helpers import WorkerProcess, eventually, produce, received, worker_config

pytestmark = pytest.mark.integration

RULE = {"name": "LatencyHigh", "type": "above", "threshold": 500, "severity": "critical"}


@pytest.fixture
def worker(
    broker: EmbeddedBroker, httpserver: HTTPServer, tmp_path: Path
) -> Iterator[WorkerProcess]:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    receiver = {"type": "webhook", "name": "oncall", "url": httpserver.url_for("/hook")}
    path, config = worker_config(tmp_path, broker.bootstrap, rules=[RULE], receivers=[receiver])
    running = WorkerProcess(path, config, tmp_path / "worker.log").start()
    yield running
    running.stop()


def rewrite(worker: WorkerProcess, text: str) -> None:
    """Replace the file atomically, as editors and Kubernetes do."""
    tmp = worker.config_path.with_name(worker.config_path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, worker.config_path)


def with_threshold(worker: WorkerProcess, threshold: float) -> str:
    config = {**worker.config, "rules": [{**RULE, "threshold": threshold}]}
    return yaml.safe_dump(config)


def status(worker: WorkerProcess) -> dict[str, Any]:
    code, body = worker.get("/api/status")
    assert code == 200, body
    result: dict[str, Any] = orjson.loads(body)
    return result


def reloads(worker: WorkerProcess, outcome: str) -> float:
    _, body = worker.get("/metrics")
    prefix = f'anomalyd_config_reloads_total{{outcome="{outcome}"}} '
    lines = [line for line in body.decode().splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


async def next_reload(worker: WorkerProcess, seen: int) -> dict[str, Any]:
    """The last reload once there have been more than `seen`."""

    def done() -> dict[str, Any] | None:
        worker.assert_running()
        total = sum(reloads(worker, o) for o in ("ok", "rejected", "restart_needed"))
        last: dict[str, Any] | None = status(worker)["reload"]["last"]
        return last if total > seen else None

    return await eventually(done, timeout=20, interval=0.1, what=f"reload #{seen + 1}")


async def firing(httpserver: HTTPServer, stream: str) -> dict[str, Any]:
    def alert() -> dict[str, Any] | None:
        for payload in received(httpserver):
            for item in payload["alerts"]:
                if item["labels"]["stream"] == stream and item["status"] == "firing":
                    return dict(item)
        return None

    return await eventually(alert, timeout=30, what=f"a firing alert of {stream}")


async def test_reload_applies_rejects_and_answers_sighup(
    broker: EmbeddedBroker, httpserver: HTTPServer, worker: WorkerProcess
) -> None:
    await worker.wait_ready()
    await eventually(
        lambda: any(line["event"] == "config_reload_ready" for line in worker.log_lines()),
        what="the reloader to handle SIGHUP",
    )
    events = worker.config["topics"]["events"]
    before = status(worker)
    assert before["reload"]["last"] is None
    assert before["config_version"] == before["reload"]["config_version"]

    # 1. An atomic rewrite lowers the threshold: the next event over it alerts.
    rewrite(worker, with_threshold(worker, 300))
    applied = await next_reload(worker, 0)
    assert (applied["trigger"], applied["outcome"], applied["applied"]) == ("file", "ok", ["rules"])
    version = status(worker)["config_version"]
    assert version == applied["config_version"] != before["config_version"]
    await produce(broker.bootstrap, events, [{"stream": "a", "ts": time.time(), "value": 400}])
    alert = await firing(httpserver, "a")
    assert alert["annotations"]["config_version"] == version
    assert alert["annotations"]["expected"] == "<= 300"

    # 2. Broken edits are rejected, each problem reported; the worker keeps its config.
    rewrite(worker, "rules: [{name: LatencyHigh, type: above\n")
    rejected = await next_reload(worker, 1)
    assert rejected["outcome"] == "rejected"
    # /api/status (open to all) shows where and what; the log has the problem's text.
    assert rejected["problems"] == [{"location": "line 2, column 1", "kind": "yaml_syntax"}]
    rewrite(worker, yaml.safe_dump({**worker.config, "rulez": []}))
    rejected = await next_reload(worker, 2)
    assert rejected["outcome"] == "rejected"
    assert rejected["problems"] == [{"location": "rulez", "kind": "unknown_key"}]
    assert reloads(worker, "rejected") == 2
    logged = [line for line in worker.log_lines() if line["event"] == "config_reload_rejected"]
    [yaml_problem, key_problem] = [line["problem"] for line in logged]
    assert yaml_problem.startswith("not valid YAML: ")
    # The log names the line; the status page shows the location only.
    assert key_problem.startswith("rulez: Extra inputs are not permitted (config line ")
    current = status(worker)
    assert current["config_version"] == version
    assert current["reload"]["last"]["problems"] == rejected["problems"]
    await produce(broker.bootstrap, events, [{"stream": "b", "ts": time.time(), "value": 400}])
    alert = await firing(httpserver, "b")  # still the lowered threshold
    assert alert["annotations"]["config_version"] == version

    # 3. SIGHUP reloads (the file is fixed first; that is a reload of its own).
    rewrite(worker, with_threshold(worker, 300))
    assert (await next_reload(worker, 3))["outcome"] == "ok"
    os.kill(worker.pid, signal.SIGHUP)
    hup = await next_reload(worker, 4)
    assert (hup["trigger"], hup["outcome"], hup["applied"]) == ("sighup", "ok", [])
    assert reloads(worker, "ok") == 3
    worker.assert_running()

    body = status(worker)
    assert body["ready"] is True
    assert body["streams"]["count"] == 2
    assert [s["name"] for s in body["streams"]["items"]] == ["a", "b"]
    assert body["consumer"]["lag"], "the worker reads assigned partitions"
    _, metrics = worker.get("/metrics")
    assert f'anomalyd_config_version_info{{version="{version}"}} 1.0' in metrics.decode()
