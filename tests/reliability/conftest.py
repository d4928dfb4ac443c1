"""Fixtures of the reliability scenarios, and the table they print at the end of the run
(`make reliability`; the fast variants print theirs in `make test`)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from harness import FULL, MailSink, Row, WebhookSink, table

from helpers import WorkerProcess

_ROWS = pytest.StashKey[list[tuple[str, Row]]]()
#: Each test's outcome by node id, and why it xfailed, for the table (the report hook
#: sees no config to stash it in).
_OUTCOMES: dict[str, tuple[str, str]] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_ROWS] = []


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Callable[[Row], None]:
    """Add a scenario's result row to the table printed at the end."""
    rows = request.config.stash[_ROWS]
    return lambda row: rows.append((request.node.nodeid, row))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember each test's outcome for the table (a failed teardown does not hide it)."""
    if report.when == "call" or not report.passed:
        why = getattr(report, "wasxfail", None)
        _OUTCOMES.setdefault(report.nodeid, ("xfail", why) if why else (report.outcome, ""))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    rows = []
    for nodeid, row in config.stash.get(_ROWS, []):
        result, why = _OUTCOMES.get(nodeid, ("?", ""))
        rows.append(replace(row, result=result, why=why))
    if not rows:
        return
    size = "full sizes" if FULL else "fast sizes (ANOMALYD_RELIABILITY=full for the issue's)"
    terminalreporter.section(f"reliability: {size}")
    for line in table(rows):
        terminalreporter.write_line(line)
    for line in (
        "notified: anomalies whose firing and resolved notifications were delivered (after a",
        "  receiver outage: or are in alerts.dlq with a reason); lost: the other anomalies;",
        "  duplicates: deliveries again under a webhook-id (notification id) delivered before;",
        "  recover: as each scenario's note says.",
    ):
        terminalreporter.write_line(line)
    out = Path(config.rootpath, "build", "reliability.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([row.to_json() for row in rows], indent=2) + "\n")
    terminalreporter.write_line(f"rows written to {out.relative_to(config.rootpath)}")


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    """Workers a scenario starts; each is stopped (or, if it hangs, killed) at the end."""
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        try:
            worker.stop()
        except AssertionError:
            worker.kill()


@pytest.fixture
def start_worker(workers: list[WorkerProcess], tmp_path: Path) -> Callable[..., WorkerProcess]:
    def start(path: Path, config: dict[str, Any], name: str | None = None) -> WorkerProcess:
        log = tmp_path / f"{name or f'worker{len(workers)}'}.log"
        worker = WorkerProcess(path, config, log).start()
        workers.append(worker)
        return worker

    return start


@pytest_asyncio.fixture
async def webhook_sink() -> AsyncIterator[WebhookSink]:
    sink = await WebhookSink().start()
    yield sink
    await sink.stop()


@pytest.fixture
def mail_sink() -> Iterator[MailSink]:
    sink = MailSink().start()
    yield sink
    sink.stop()
