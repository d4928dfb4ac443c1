"""`make run` as a newcomer runs it: the worker on its own embedded broker with demo
traffic, stopped with Ctrl-C. A clean start and a clean stop log no warning and no error."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from helpers import REPO, eventually, worker_config

pytestmark = pytest.mark.integration


def _events_judged(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return False
    return any(
        line.startswith("anomalyd_events_total ") and float(line.split()[1]) > 0
        for line in text.splitlines()
    )


def _problems(output: bytes) -> list[Any]:
    """Log lines at warning level or above, and lines that are not JSON (make's own
    `Interrupt` notice aside)."""
    found: list[Any] = []
    for raw in output.splitlines():
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            if not raw.startswith((b"make:", b"make[")):
                found.append(raw.decode(errors="replace"))
            continue
        if line.get("level") in ("warning", "error", "critical", "exception"):
            found.append(line)
    return found


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
async def test_make_run_starts_and_stops_without_warnings_or_errors(tmp_path: Path) -> None:
    path, config = worker_config(
        tmp_path, None, rules=[], receivers=[{"name": "console", "type": "log"}]
    )
    log = tmp_path / "make-run.log"
    with log.open("wb") as out:
        # Its own session, as a terminal's foreground job: Ctrl-C reaches every process.
        make = await asyncio.create_subprocess_exec(
            "make",
            "--no-print-directory",
            "run",
            f"CONFIG={path}",
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        await eventually(
            lambda: make.returncode is None and _events_judged(config["http"]["port"]),
            timeout=60,
            interval=0.2,
            what="the worker judging demo events",
        )
        os.killpg(make.pid, signal.SIGINT)  # Ctrl-C
        await asyncio.wait_for(make.wait(), timeout=60)
    finally:
        if make.returncode is None:
            os.killpg(make.pid, signal.SIGKILL)
            await asyncio.wait_for(make.wait(), timeout=10)
    output = log.read_bytes()
    assert b"demo_started" in output
    assert b"embedded_broker_stopped" in output
    assert _problems(output) == []
