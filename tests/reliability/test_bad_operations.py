"""Bad operations: invalid configs on reload (broken YAML, an unknown receiver, a ca_file
that is not PEM, broken email templates, an empty file, a repeated key, an alias bomb),
an unknown receiver or an unbuildable one at start, an unreachable SMTP host, a state
directory that cannot be used or a full disk. Each gives a clear error; nothing is lost;
the worker keeps running wherever it safely can."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import (
    Row,
    WebhookSink,
    build_corpus,
    corpus_row,
    dead_letters,
    metric,
    produce_fast,
    read_topic,
    scenario_config,
    settle,
)

from anomalyd.worker.kafka.admin import free_port
from anomalyd.worker.kafka.broker import EmbeddedBroker
from helpers import REPO, WorkerProcess, eventually
from helpers import YAML_BOMB as BOMB

pytestmark = [pytest.mark.integration, pytest.mark.reliability, pytest.mark.timeout(180)]

EVENTS, STREAMS, ANOMALIES = 600, 12, 4


def rewrite(path: Path, text: str) -> None:
    """Replace the file atomically, as editors and Kubernetes do."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def reloads(worker: WorkerProcess, outcome: str) -> float:
    return metric(worker, f'anomalyd_config_reloads_total{{outcome="{outcome}"}}')


def invalid_configs(config: dict[str, Any], tmp_path: Path) -> dict[str, str]:
    """Files a reload must reject, each a change of the running `config`, by what is wrong."""
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    mail = {
        "type": "email",
        "name": "mail",
        "smarthost": "127.0.0.1:25",
        "from": "anomalyd@example.com",
        "to": ["oncall@example.com"],
    }

    def with_receiver(**fields: Any) -> str:
        return yaml.safe_dump({**config, "receivers": [*config["receivers"], {**mail, **fields}]})

    running = yaml.safe_dump(config)
    bomb = "".join(f"  {line}\n" for line in BOMB.splitlines())
    return {
        "not YAML": "rules: [\n  - {name: X, type: above",
        "unknown receiver": yaml.safe_dump(
            {**config, "route": {"receiver": "pager", "group_wait": "0s"}}
        ),
        "ca_file not PEM": with_receiver(ca_file=str(junk)),
        "unknown filter": with_receiver(subject="{{ status|shout }}"),
        "misspelled variable": with_receiver(text="{{ alrts|length }} alerts"),
        "empty file": "",
        "comments only": "# rewritten by a script that failed\n",
        "repeated key": running + "http:\n  bind: 0.0.0.0\n",
        "alias bomb": running + "bomb:\n" + bomb,
    }


#: What the rejections of `invalid_configs` say, in part.
REJECTED_BECAUSE = (
    "not valid YAML",
    "route.receiver: receiver 'pager' is not defined",
    "receivers[1].ca_file: not PEM certificates",
    "receivers[1].subject: the template does not compile: No filter named 'shout'",
    "receivers[1].text: the template fails on a sample alert: 'alrts' is undefined",
    "the file holds no config",
    "found a repeated key 'http'",
    "aliases expand the document",
)


async def test_an_invalid_config_on_reload_is_rejected_and_the_worker_goes_on(
    broker: EmbeddedBroker,
    webhook_sink: WebhookSink,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
    record: Callable[[Row], None],
) -> None:
    corpus = build_corpus(EVENTS, STREAMS, ANOMALIES, seed=71)
    path, config = scenario_config(tmp_path, broker.bootstrap, [webhook_sink.receiver()])
    worker = start_worker(path, config)
    await worker.wait_ready()
    good = path.read_text()

    bad_files = invalid_configs(config, tmp_path)
    for n, (what, text) in enumerate(bad_files.items(), 1):
        rewrite(path, text)
        os.kill(worker.pid, signal.SIGHUP)
        await eventually(
            lambda n=n: reloads(worker, "rejected") >= n, timeout=20, what=f"rejection of {what}"
        )
        worker.assert_running()
        started = time.monotonic()
        assert worker.get("/healthz")[0] == 200, what
        assert time.monotonic() - started < 1.0, f"/healthz slow after {what}"
    problems = [
        line["problem"]
        for line in worker.log_lines()
        if line.get("event") == "config_reload_rejected"
    ]
    for expected in REJECTED_BECAUSE:
        assert any(expected in p for p in problems), (expected, problems)
    assert worker.get("/readyz")[0] == 200, "the worker goes on with the config it had"

    await produce_fast(broker.bootstrap, config["topics"]["events"], corpus.events)
    complete = await settle(lambda: webhook_sink.tally, corpus.streams, timeout=60)
    rewrite(path, good)
    tally = webhook_sink.tally
    record(
        corpus_row(
            "bad ops: invalid configs on reload",
            corpus,
            ANOMALIES,
            tally,
            None,
            f"{len(bad_files)} bad files ({', '.join(bad_files)}): each rejected, logged;"
            " kept running on the old config",
        )
    )
    assert complete
    assert reloads(worker, "ok") == 0, "nothing of the bad files was applied"


async def test_an_unknown_receiver_at_start_is_a_clear_error_and_loses_nothing(
    broker: EmbeddedBroker,
    webhook_sink: WebhookSink,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
    record: Callable[[Row], None],
) -> None:
    corpus = build_corpus(EVENTS, STREAMS, ANOMALIES, seed=72)
    path, config = scenario_config(
        tmp_path, broker.bootstrap, [webhook_sink.receiver()], route={"receiver": "pager"}
    )
    await produce_fast(broker.bootstrap, config["topics"]["events"], corpus.events)
    started = time.monotonic()
    refused = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "anomalyd", "worker", "--config", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 78, refused.stderr  # EX_CONFIG
    assert "route.receiver: receiver 'pager' is not defined (receivers: hook)" in refused.stderr

    # Fixed, the worker judges the events that waited in the topic meanwhile.
    fixed = {key: value for key, value in config.items() if key != "route"}
    rewrite(path, yaml.safe_dump(fixed))
    worker = start_worker(path, config)
    await worker.wait_ready()
    complete = await settle(lambda: webhook_sink.tally, corpus.streams, timeout=60)
    tally = webhook_sink.tally
    record(
        corpus_row(
            "bad ops: unknown receiver at start",
            corpus,
            ANOMALIES,
            tally,
            time.monotonic() - started,
            "exit 78 with the path of the problem; recover: to every alert after the fix",
        )
    )
    assert complete


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("ca_file", "junk.pem", "receivers[0].ca_file: not PEM certificates"),
        ("subject", "{{ status|shout }}", "receivers[0].subject: the template does not compile"),
        ("html", "{{ commn_labels.x }}", "'commn_labels' is undefined"),
    ],
)
async def test_a_receiver_the_worker_cannot_build_at_start_exits_78(
    tmp_path: Path, field: str, value: str, expected: str, record: Callable[[Row], None]
) -> None:
    """What check-config accepts, the worker runs, and what it refuses the worker refuses
    before it starts: exit 78 (EX_CONFIG), not a crash (exit 1) once started."""
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    mail = {
        "type": "email",
        "name": "mail",
        "smarthost": "127.0.0.1:25",
        "from": "anomalyd@example.com",
        "to": ["oncall@example.com"],
        field: str(tmp_path / value) if field == "ca_file" else value,
    }
    path, _ = scenario_config(tmp_path, f"127.0.0.1:{free_port()}", [mail])
    checked = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "anomalyd", "check-config", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    refused = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "anomalyd", "worker", "--config", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    record(Row(f"bad ops: {field} at start", 0, 0, 0, 0, 0, None, f"exit {refused.returncode}"))
    assert checked.returncode == refused.returncode == 78, refused.stderr[-2000:]
    assert expected in checked.stderr
    assert expected in refused.stderr


@pytest.mark.slow
async def test_an_unreachable_smtp_host_dead_letters_the_mail_and_the_rest_goes_on(
    broker: EmbeddedBroker,
    webhook_sink: WebhookSink,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
    record: Callable[[Row], None],
) -> None:
    corpus = build_corpus(EVENTS, STREAMS, ANOMALIES, seed=73)
    mail = {
        "type": "email",
        "name": "mail",
        "smarthost": f"127.0.0.1:{free_port()}",  # nothing listens there
        "from": "anomalyd@example.com",
        "to": ["oncall@example.com"],
        "tls": "none",
        "timeout": "2s",
    }
    path, config = scenario_config(
        tmp_path,
        broker.bootstrap,
        [webhook_sink.receiver(), mail],
        delivery={"max_attempts": 3, "initial_backoff": "50ms", "max_backoff": "100ms"},
    )
    worker = start_worker(path, config)
    await worker.wait_ready()
    topics = config["topics"]
    await produce_fast(broker.bootstrap, topics["events"], corpus.events)
    complete = await settle(lambda: webhook_sink.tally, corpus.streams, timeout=60)

    expected = {(s, status) for s in corpus.streams for status in ("firing", "resolved")}
    letters: list[Any] = []

    async def all_lettered() -> bool:
        letters[:] = dead_letters(await read_topic(broker.bootstrap, topics["alerts_dlq"]))
        return expected <= {pair for _, _, pairs in letters for pair in pairs}

    await eventually(all_lettered, timeout=60, interval=0.5, what="every mail dead-lettered")
    worker.assert_running()
    tally = webhook_sink.tally
    record(
        corpus_row(
            "bad ops: unreachable SMTP host",
            corpus,
            ANOMALIES,
            tally,
            None,
            f"webhook delivered; {len(letters)} mails in alerts.dlq: {letters[0][1]}",
        )
    )
    assert complete, "the webhook receiver is not held up by the mail one"
    assert {receiver for receiver, _, _ in letters} == {"mail"}
    assert all("connection" in reason for _, reason, _ in letters), letters


async def test_a_data_dir_that_cannot_be_created_is_a_clear_error(
    tmp_path: Path, record: Callable[[Row], None]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    path, config = scenario_config(
        tmp_path, f"127.0.0.1:{free_port()}", [], app={"data_dir": str(blocker / "state")}
    )
    worker = WorkerProcess(path, config, tmp_path / "worker.log").start()
    exited = await eventually(
        lambda: worker._proc is not None and worker._proc.poll() is not None,
        timeout=30,
        what="the worker to exit",
    )
    assert exited
    code = worker.stop()
    lines = [line for line in worker.log_lines() if line.get("event") == "data_dir_unusable"]
    note = f"exit {code}: " + (f"data_dir_unusable: {lines[0]['problem']}" if lines else "?")
    record(Row("bad ops: data_dir not a directory", 0, 0, 0, 0, 0, None, note))
    assert code == 1
    [line] = lines
    assert (line["path"], line["problem"]) == (str(blocker / "state"), "Not a directory")


class FullDiskWorker(WorkerProcess):
    """The worker in a mount namespace of its own, whose data_dir is on a full 64 KB tmpfs."""

    def start(self) -> FullDiskWorker:
        data_dir = self.config["app"]["data_dir"]
        script = (
            f"mkdir -p {data_dir} && mount -t tmpfs -o size=64k tmpfs {data_dir} && "
            f'(dd if=/dev/zero of={data_dir}/fill bs=4k 2>/dev/null; true) && exec "$@"'
        )
        command = [sys.executable, "-m", "anomalyd", "worker", "--config", str(self.config_path)]
        self.started_at = time.monotonic()
        self._proc = subprocess.Popen(
            ["unshare", "-m", "sh", "-c", script, "sh", *command],
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        return self


def can_mount() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = "mount -t tmpfs -o size=4k tmpfs /mnt 2>/dev/null"
    return subprocess.run(["unshare", "-m", "sh", "-c", probe], check=False).returncode == 0


@pytest.mark.slow
async def test_a_full_disk_under_the_data_dir_does_not_stop_the_worker(
    broker: EmbeddedBroker,
    webhook_sink: WebhookSink,
    workers: list[WorkerProcess],
    tmp_path: Path,
    record: Callable[[Row], None],
) -> None:
    if not can_mount():
        pytest.skip("needs root and mount namespaces (unshare -m)")
    corpus = build_corpus(EVENTS, STREAMS, ANOMALIES, seed=74)
    path, config = scenario_config(tmp_path, broker.bootstrap, [webhook_sink.receiver()])
    worker = FullDiskWorker(path, config, tmp_path / "worker.log").start()
    workers.append(worker)
    await worker.wait_ready()
    await produce_fast(broker.bootstrap, config["topics"]["events"], corpus.events)
    complete = await settle(lambda: webhook_sink.tally, corpus.streams, timeout=60)
    worker.assert_running()
    tally = webhook_sink.tally
    record(
        corpus_row(
            "bad ops: full disk under data_dir",
            corpus,
            ANOMALIES,
            tally,
            None,
            "state lives in Kafka: the worker runs on",
        )
    )
    assert complete


async def test_http_port_0_picks_a_free_port(tmp_path: Path, record: Callable[[Row], None]) -> None:
    """`http.port: 0` passes check-config ("0 picks a free port", says the schema): the
    worker picks one (and logs it) instead of dying in Faust, which refuses port 0."""
    path, config = scenario_config(tmp_path, f"127.0.0.1:{free_port()}", [], http={"port": 0})
    worker = WorkerProcess(path, config, tmp_path / "worker.log").start()

    def settled() -> bool:  # exited, or running and waiting for its (absent) broker
        exited = worker._proc is not None and worker._proc.poll() is not None
        return exited or any(e.get("event") == "broker_unavailable" for e in worker.log_lines())

    try:
        await eventually(settled, timeout=30, what="the worker to exit or wait for its broker")
    finally:
        code = worker.stop()
    text = worker.log_path.read_text()
    crashed = code == 1 and "ImproperlyConfigured" in text
    note = "the worker dies with a Faust traceback" if crashed else f"exit {code}"
    record(Row("bad ops: http.port 0", 0, 0, 0, 0, 0, None, note))
    assert not crashed, text[-2000:]
    assert code in (0, 78), text[-2000:]
