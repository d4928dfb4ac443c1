"""The config reloader: a good file is applied (live sections only), a bad one rejected
with every problem logged, keys that need a restart reported; SIGHUP and an atomic
replace of the file both trigger it."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from structlog.testing import capture_logs

from anomalyd.clock import ManualClock
from anomalyd.config import AnomalydConfig, config_version, load_config
from anomalyd.config.loader import EMPTY_FILE
from anomalyd.metrics import Metrics
from anomalyd.worker.detection.runtime import ReconfigureFailed
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

    def prepare(self, config: AnomalydConfig) -> Callable[[], None]:
        return lambda: self._applied.notification.append(config)


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


# --- all or nothing ---------------------------------------------------------------------------


class FailingNotification:
    def __init__(self, applied: Applied) -> None:
        self._applied = applied

    def prepare(self, config: AnomalydConfig) -> Callable[[], None]:
        raise ssl.SSLError("the certificate file changed under us")


class FailingDetection(Applied):
    async def reconfigure(self, config: AnomalydConfig) -> None:
        raise ReconfigureFailed("ValueError: no")


async def test_receivers_that_cannot_be_built_apply_nothing(rig: Rig) -> None:
    rig.reloader._notification = FailingNotification(rig.applied)
    write(rig.path, edited(rules=[{"name": "High", "type": "above", "threshold": 300}]))
    record = await rig.reloader.reload("sighup")
    assert record.outcome == "rejected"
    [problem] = record.problems
    assert problem.startswith("the receivers could not be built: SSLError")
    assert rig.applied.detection == []
    assert rig.reloader.config is rig.config


async def test_detection_that_cannot_adopt_the_config_applies_nothing(rig: Rig) -> None:
    rig.reloader._detection = FailingDetection()
    write(rig.path, edited(rules=[{"name": "High", "type": "above", "threshold": 300}]))
    record = await rig.reloader.reload("sighup")
    assert record.outcome == "rejected"
    assert record.problems == ("detection could not adopt the config: ValueError: no",)
    assert rig.applied.notification == [], "the receivers were not swapped in"
    assert rig.reloader.config is rig.config


async def test_the_real_check_runs_on_reload(rig: Rig, tmp_path: Path) -> None:
    """The reloader's default load is the check-config one: a template with an unknown
    filter and a ca_file that is not a certificate are rejections, not crashes."""
    reloader = ConfigReloader(
        rig.path, rig.config, rig.applied, Notification(rig.applied), ManualClock(T0), Metrics()
    )
    junk = tmp_path / "junk.pem"
    junk.write_text("junk\n")
    mail = {
        "type": "email",
        "name": "mail",
        "smarthost": "127.0.0.1:25",
        "from": "a@example.com",
        "to": ["b@example.com"],
    }
    for receiver in ({**mail, "ca_file": str(junk)}, {**mail, "subject": "{{ x|nope }}"}):
        raw = {**BASE, "http": {"port": 6066}, "receivers": [receiver]}
        write(rig.path, raw)
        record = await reloader.reload("file")
        assert record.outcome == "rejected", record
        assert rig.applied.detection == rig.applied.notification == []


# --- a file rewritten in place ------------------------------------------------------------------


async def test_a_file_rewritten_in_place_is_applied_once_settled(tmp_path: Path) -> None:
    """A writer that takes a while (not an atomic replace): the valid prefix it leaves
    for a moment is not applied; the finished file is, once."""
    rig = Rig(tmp_path)
    rig.reloader._settle = 0.4
    full = yaml.safe_dump(
        edited(
            rules=[
                {"name": "High", "type": "above", "threshold": 300},
                {"name": "Low", "type": "below", "threshold": 1},
            ]
        )
    )
    prefix = full[: full.index("- name: Low")]
    assert len(parse_rules(prefix)) == 1, "the prefix alone is a valid config"
    await rig.reloader.start()
    try:
        # The watcher is live once an atomic replace has been applied (it starts watching
        # some time after start() returns: replace the file until it sees one).
        def replaced() -> list[AnomalydConfig]:
            if not rig.applied.detection:
                write(rig.path, edited(rules=[{"name": "High", "type": "above", "threshold": 400}]))
            return rig.applied.detection

        await eventually(replaced, timeout=10, interval=0.5, what="the watcher")
        rig.applied.detection.clear()
        with rig.path.open("w") as file:
            file.write(prefix)
            file.flush()
            # The writer is slow: the watcher sees the prefix well before the rest comes.
            await asyncio.sleep(0.25)
            file.write(full[len(prefix) :])
        await eventually(lambda: rig.applied.detection, timeout=10, what="an applied config")
    finally:
        await rig.reloader.stop()
    assert rig.count("rejected") == 0, "the emptied file was not read either"
    assert [[rule.name for rule in c.rules] for c in rig.applied.detection] == [["High", "Low"]]


async def test_an_emptied_file_is_rejected(running: Rig) -> None:
    def emptied() -> ReloadRecord | None:
        if last(running) is None:  # again until the watcher (started a moment ago) sees it
            running.path.write_text("")  # truncated in place, as `> file` does
        return last(running)

    record = await eventually(emptied, timeout=10, interval=0.5, what="a reload")
    assert record.outcome == "rejected"
    assert record.problems == (EMPTY_FILE,)
    assert running.applied.detection == []


def parse_rules(text: str) -> list[Any]:
    return list(yaml.safe_load(text)["rules"])
