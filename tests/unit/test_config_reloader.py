"""The config reloader: a good file is applied (live sections only), a bad one rejected
with every problem logged, keys that need a restart reported; SIGHUP and an atomic
replace of the file both trigger it."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from structlog.testing import capture_logs

from anomalyd.clock import ManualClock
from anomalyd.config import AnomalydConfig, config_version, load_config
from anomalyd.metrics import Metrics
from anomalyd.worker.reload import ConfigReloader, ReloadRecord
from helpers import eventually

T0 = 1_700_000_000.0
ENV = {"API_TOKEN": "s3cret-token-value"}
BASE: dict[str, Any] = {
    "http": {"port": 6066, "api_token": "${API_TOKEN}"},
    "rules": [{"name": "High", "type": "above", "threshold": 500}],
    "receivers": [{"name": "log", "type": "log"}],
}


class Applied:
    """Stands in for the Runtime and the Delivery: records what it is given."""

    def __init__(self) -> None:
        self.detection: list[AnomalydConfig] = []
        self.notification: list[AnomalydConfig] = []

    async def reconfigure(self, config: AnomalydConfig) -> None:
        self.detection.append(config)


class Notification:
    def __init__(self, applied: Applied) -> None:
        self._applied = applied

    def reconfigure(self, config: AnomalydConfig) -> None:
        self._applied.notification.append(config)


def write(path: Path, raw: dict[str, Any] | str) -> None:
    """Replace the file atomically, as editors and `kubectl` do."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw))
    os.replace(tmp, path)


def load(path: Path) -> AnomalydConfig:
    return load_config(path, environ=ENV)


class Rig:
    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "anomalyd.yaml"
        write(self.path, BASE)
        self.config = load(self.path)
        self.applied = Applied()
        self.metrics = Metrics()
        self.reloader = ConfigReloader(
            self.path,
            self.config,
            self.applied,
            Notification(self.applied),
            ManualClock(T0),
            self.metrics,
            load=load,
            debounce_ms=50,
        )

    def count(self, outcome: str) -> float:
        sample = self.metrics.registry.get_sample_value(
            "anomalyd_config_reloads_total", {"outcome": outcome}
        )
        return sample or 0.0


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


def edited(**sections: Any) -> dict[str, Any]:
    return {**BASE, **sections}


async def test_a_valid_change_is_applied_and_counted(rig: Rig) -> None:
    write(rig.path, edited(rules=[{"name": "High", "type": "above", "threshold": 300}]))
    record = await rig.reloader.reload("sighup")
    assert record.outcome == "ok"
    assert record.applied == ("rules",)
    assert record.needs_restart == ()
    [config] = rig.applied.detection
    assert rig.applied.notification == [config]
    assert config.rules[0].threshold == 300  # type: ignore[union-attr]
    assert record.config_version == config_version(config) != config_version(rig.config)
    assert rig.reloader.version == record.config_version
    assert rig.reloader.last is record
    assert rig.count("ok") == 1


async def test_an_unchanged_file_applies_nothing(rig: Rig) -> None:
    record = await rig.reloader.reload("sighup")
    assert (record.outcome, record.applied) == ("ok", ())
    assert rig.applied.detection == []


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        ("rules: [{name: High, type: above, threshold: 300\n", 1),  # not YAML
        (yaml.safe_dump(edited(rulez=[])), 1),  # an unknown key
        (yaml.safe_dump(edited(app={"idd": "x"}, model={"threshold": 7})), 2),
    ],
)
async def test_an_invalid_file_is_rejected_with_each_problem_logged(
    rig: Rig, text: str, problems: int
) -> None:
    write(rig.path, text)
    with capture_logs() as logs:
        record = await rig.reloader.reload("file")
    assert record.outcome == "rejected"
    assert len(record.problems) == problems
    rejected = [line for line in logs if line["event"] == "config_reload_rejected"]
    assert [line["problem"] for line in rejected] == list(record.problems)
    assert all(line["log_level"] == "error" for line in rejected)
    assert rig.applied.detection == rig.applied.notification == []
    assert rig.reloader.config is rig.config
    assert record.config_version == config_version(rig.config)  # the running one
    assert rig.count("rejected") == 1
    assert rig.count("ok") == 0


async def test_keys_that_need_a_restart_are_reported_not_applied(rig: Rig) -> None:
    raw = edited(
        http={"port": 7000, "api_token": "${API_TOKEN}"},
        kafka={"partitions": 8},
        rules=[{"name": "High", "type": "above", "threshold": 300}],
    )
    write(rig.path, raw)
    with capture_logs() as logs:
        record = await rig.reloader.reload("sighup")
    assert record.outcome == "restart_needed"
    assert record.applied == ("rules",)
    assert record.needs_restart == ("kafka.partitions", "http.port")
    [config] = rig.applied.detection
    assert config.http.port == 6066
    assert config.kafka.partitions == 4
    [line] = [line for line in logs if line["event"] == "config_change_needs_restart"]
    assert line["keys"] == ["kafka.partitions", "http.port"]
    assert rig.count("restart_needed") == 1
    # Until the restart, every reload says so again.
    assert (await rig.reloader.reload("sighup")).outcome == "restart_needed"
    assert len(rig.applied.detection) == 1


async def test_the_record_is_json_for_the_status_page(rig: Rig) -> None:
    write(rig.path, "rules: [")
    record = await rig.reloader.reload("file")
    body = record.to_json()
    assert body["at"] == "2023-11-14T22:13:20.000Z"
    assert body["outcome"] == "rejected"
    assert body["problems"] == list(record.problems)
    assert rig.reloader.status()["last"] == body


# --- triggers -------------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def running(rig: Rig) -> AsyncIterator[Rig]:
    await rig.reloader.start()
    try:
        yield rig
    finally:
        await rig.reloader.stop()


def last(rig: Rig) -> ReloadRecord | None:
    return rig.reloader.last


async def test_sighup_reloads(running: Rig) -> None:
    write(running.path, edited(rules=[{"name": "High", "type": "above", "threshold": 300}]))
    os.kill(os.getpid(), signal.SIGHUP)
    record = await eventually(lambda: last(running), timeout=10, what="a reload")
    assert "sighup" in record.trigger
    assert record.applied == ("rules",)


async def test_an_atomic_replace_of_the_file_reloads(running: Rig) -> None:
    write(running.path, edited(rules=[{"name": "High", "type": "above", "threshold": 300}]))
    record = await eventually(lambda: last(running), timeout=10, what="a reload")
    assert record.trigger == "file"
    assert record.applied == ("rules",)
    # Another file in the directory is not the config.
    (running.path.parent / "other.yaml").write_text("x: 1")
    write(running.path.parent / "notes.txt", "hello")
    write(running.path, edited(rules=[{"name": "High", "type": "above", "threshold": 200}]))
    await eventually(
        lambda: len(running.applied.detection) == 2, timeout=10, what="a second reload"
    )
    assert running.count("ok") == 2
