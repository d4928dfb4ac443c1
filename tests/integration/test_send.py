"""`anomalyd send` end to end: a CSV file in, through a real worker on the embedded broker,
an alert out to a real HTTP receiver."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from anomalyd.worker.kafka.broker import EmbeddedBroker
from helpers import REPO, WorkerProcess, eventually, received, webhook_receiver, worker_config

pytestmark = pytest.mark.integration


async def test_a_csv_sent_with_anomalyd_send_fires_an_alert(
    broker: EmbeddedBroker, httpserver: HTTPServer, tmp_path: Path
) -> None:
    rule = {"name": "LatencyHigh", "type": "above", "threshold": 500, "severity": "critical"}
    path, config = worker_config(
        tmp_path, broker.bootstrap, rules=[rule], receivers=[webhook_receiver(httpserver)]
    )
    worker = WorkerProcess(path, config, tmp_path / "worker.log").start()
    try:
        await worker.wait_ready()
        start = int(time.time()) - 10
        rows = [f"{start + i},{v}" for i, v in enumerate([230, 241, 228, 1250, 236])]
        csv_file = tmp_path / "checkout.latency_ms.csv"
        csv_file.write_text("timestamp,value\n" + "\n".join(rows) + "\n")

        # In a thread: the test's loop keeps running while the command does.
        sent = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "anomalyd", "send", "--config", str(path), str(csv_file)],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
            check=False,
        )
        assert sent.returncode == 0, sent.stderr
        assert f"sent 5 events to {config['topics']['events']} (0 skipped, 0 failed)" in sent.stdout

        def firing() -> list[dict[str, object]]:
            return [p for p in received(httpserver) if p["status"] == "firing"]

        [payload] = (await eventually(firing, what="the firing webhook"))[:1]
        [alert] = payload["alerts"]  # type: ignore[misc]
        assert alert["labels"]["alertname"] == "LatencyHigh"
        # The stream is the file's name, as backtest reads the same CSV.
        assert alert["labels"]["stream"] == "checkout.latency_ms"
        assert alert["annotations"]["value"] == "1250"
    finally:
        worker.stop()
