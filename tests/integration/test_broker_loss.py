"""A worker whose broker goes away or comes back empty does not look ready while it
judges nothing: a real worker, an embedded broker of its own."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from anomalyd.worker.kafka.admin import free_port
from anomalyd.worker.kafka.broker import EmbeddedBroker
from anomalyd.worker.shutdown import DEADLINE_S
from helpers import WorkerProcess, eventually, worker_config

pytestmark = pytest.mark.integration


async def test_a_worker_whose_embedded_broker_dies_exits_promptly(tmp_path: Path) -> None:
    """It used to stay up, never ready again, and take 63 s to obey a SIGTERM."""
    path, config = worker_config(tmp_path, None, rules=[], receivers=[])
    worker = WorkerProcess(path, config, tmp_path / "worker.log").start()
    try:
        await worker.wait_ready()
        [started] = [
            line for line in worker.log_lines() if line.get("event") == "embedded_broker_started"
        ]
        os.kill(started["pid"], signal.SIGKILL)
        code = worker.wait_exit(DEADLINE_S + 15)
        assert code not in (None, 0), f"the worker is still running ({code})"
        events = [line.get("event") for line in worker.log_lines()]
        assert "embedded_broker_exited" in events
    finally:
        worker.kill()


async def test_a_broker_restarted_empty_makes_the_worker_not_ready(tmp_path: Path) -> None:
    """The worker reused a broker (here one it does not own, as with `anomalyd broker`)
    that restarted empty: it answers, but the worker's topics are gone."""
    port = free_port()
    broker = EmbeddedBroker("127.0.0.1", port)
    await broker.start()
    path, config = worker_config(tmp_path, broker.bootstrap, rules=[], receivers=[])
    worker = WorkerProcess(path, config, tmp_path / "worker.log").start()
    try:
        await worker.wait_ready()
        await broker.stop()
        broker = EmbeddedBroker("127.0.0.1", port)
        await broker.start()

        def missing_and_not_ready() -> bool:
            events = {line.get("event") for line in worker.log_lines()}
            return "broker_topics_missing" in events and worker.get("/readyz")[0] == 503

        await eventually(missing_and_not_ready, timeout=20, what="not ready, topics missing")
        # Not a blip of the restart: it stays so (the broker answers, the topics are gone).
        await asyncio.sleep(3)  # a span of time to observe, not a condition to wait for
        assert worker.get("/readyz")[0] == 503
    finally:
        worker.kill()
        await broker.stop()
