"""Test helpers: a worker subprocess, Kafka produce/consume, and polling with a deadline."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import orjson
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from anomalyd.config.schema import TopicsSection
from anomalyd.worker.kafka.admin import free_port

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[1]


async def eventually(
    probe: Callable[[], T | None] | Callable[[], Awaitable[T | None]],
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll `probe` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def worker_config(
    tmp_path: Path,
    bootstrap: str | None,
    *,
    rules: Sequence[dict[str, Any]],
    receivers: Sequence[dict[str, Any]],
    embedded_port: int | None = None,
    **sections: Any,
) -> tuple[Path, dict[str, Any]]:
    """Write a config for one test: its own group, topics and HTTP port."""
    app_id = unique("t")
    config: dict[str, Any] = {
        "app": {"id": app_id, "data_dir": str(tmp_path / "state"), "log_level": "info"},
        "kafka": (
            {"brokers": [bootstrap]}
            if bootstrap
            else {"brokers": "embedded", "embedded": {"port": embedded_port or free_port()}}
        ),
        "topics": {
            name: f"{app_id}.{name}"
            for name in TopicsSection.model_fields  # every topic, state topics included
        },
        "http": {"port": free_port()},
        "rules": list(rules),
        "receivers": list(receivers),
        "delivery": {"initial_backoff": "50ms", "max_backoff": "200ms", "max_attempts": 4},
    }
    if bootstrap:  # a short session timeout makes the group join fast on the embedded broker
        config["kafka"]["session_timeout"] = "5s"
        config["kafka"]["fetch_max_wait"] = "10ms"
    for section, values in sections.items():
        if isinstance(values, dict):
            config.setdefault(section, {}).update(values)
        else:  # a list section: inhibit_rules, silences
            config[section] = values
    path = tmp_path / "anomalyd.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, config


class WorkerProcess:
    """`anomalyd worker` as users run it, in a subprocess, logging JSON to a file."""

    def __init__(self, config_path: Path, config: dict[str, Any], log_path: Path) -> None:
        self.config_path = config_path
        self.config = config
        self.log_path = log_path
        self.started_at = 0.0
        #: What runs `anomalyd` (a test may run it through a script of its own).
        self.command = [sys.executable, "-m", "anomalyd"]
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise AssertionError("the worker has not been started")
        return self._proc.pid

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.config['http']['port']}"

    def start(self) -> WorkerProcess:
        self.started_at = time.monotonic()
        log = self.log_path.open("wb")
        self._proc = subprocess.Popen(
            [*self.command, "worker", "--config", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        return self

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.http + path, timeout=2) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except OSError:
            return 0, b""

    def call(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, bytes]:
        """An API request: `body` sent as JSON, `token` as a bearer token; the status and
        the response body, an error status included."""
        data = orjson.dumps(body) if body is not None else None
        request = urllib.request.Request(self.http + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    async def wait_ready(self, timeout: float = 45.0) -> float:
        """Seconds from process start until /readyz answers 200."""

        def ready() -> bool:
            self.assert_running()
            return self.get("/readyz")[0] == 200

        await eventually(ready, timeout=timeout, interval=0.1, what="the worker to be ready")
        return time.monotonic() - self.started_at

    def assert_running(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            raise AssertionError(f"worker exited with {self._proc.returncode}:\n{self.tail()}")

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log_path.read_bytes().splitlines():
            try:
                lines.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                lines.append({"event": "<not json>", "raw": line.decode(errors="replace")})
        return lines

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def stop(self, timeout: float = 30.0) -> int:
        if self._proc is None:
            return 0
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
                raise AssertionError(
                    f"worker ignored SIGTERM for {timeout}s:\n{self.tail()}"
                ) from None
        return self._proc.returncode

    def wait_exit(self, timeout: float) -> int | None:
        """The exit code once the process has ended within `timeout` seconds, else None."""
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to commit offsets or flush anything."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)


async def produce(bootstrap: str, topic: str, values: Sequence[bytes | dict[str, Any]]) -> None:
    """Send in order, keyed by stream as a well-behaved producer does: one stream stays in one
    partition, so its events arrive in order (unkeyed messages spread over partitions)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            raw = value if isinstance(value, bytes) else orjson.dumps(value)
            key = value["stream"].encode() if isinstance(value, dict) else b"raw"
            await producer.send_and_wait(topic, raw, key=key)
    finally:
        await producer.stop()


async def consume(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list[Any]:
    """The first `count` records of `topic` (from the beginning), or fail after `timeout`."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"got {len(records)} of {count} records from {topic}")
            batch = await consumer.getmany(timeout_ms=200)
            for partition_records in batch.values():
                records.extend(partition_records)
    finally:
        await consumer.stop()
    return records


async def read_all(bootstrap: str, topic: str, quiet: float = 1.0) -> list[Any]:
    """Every record of `topic` from the beginning, until none has come for `quiet` s."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    records: list[Any] = []
    try:
        while batch := await consumer.getmany(timeout_ms=int(quiet * 1000)):
            for partition_records in batch.values():
                records.extend(partition_records)
    finally:
        await consumer.stop()
    return records


def received(httpserver: Any, path: str = "/hook") -> list[dict[str, Any]]:
    """The JSON bodies a pytest-httpserver receiver got on `path`, in order."""
    return [
        orjson.loads(request.get_data()) for request, _ in httpserver.log if request.path == path
    ]


def webhook_receiver(httpserver: Any, name: str = "hook") -> dict[str, Any]:
    """A webhook receiver named `name` on the test HTTP server at /`name`, answering 200."""
    httpserver.expect_request(f"/{name}", method="POST").respond_with_data("ok")
    return {"type": "webhook", "name": name, "url": httpserver.url_for(f"/{name}")}


#: 470 bytes that expand to 9**9 (387 million) strings.
YAML_BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
    "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
)
