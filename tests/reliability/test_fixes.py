"""Unit tests of the bugs the reliability scenarios found outside the worker's core, now
fixed: a reused notification id, a worker that exited when its broker was not up yet, and a
data directory problem buried in a Faust traceback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from anomalyd.alert import firing, resolved
from anomalyd.notify.dedup import plan
from anomalyd.notify.stage import FlushContext
from anomalyd.worker.kafka.admin import free_port, wait_for_broker
from anomalyd.worker.kafka.broker import EmbeddedBroker
from anomalyd.worker.run import data_dir_problem

T0 = 1_700_000_000.0
LABELS = {"alertname": "LatencyHigh", "stream": "db"}


def ctx(now: float) -> FlushContext:
    return FlushContext(now, "oncall", '{}:{alertname="LatencyHigh"}', {}, 4 * 3600.0)


def test_the_next_episode_of_an_alert_is_a_new_notification() -> None:
    """Once a group resolved and closed, its log entry is forgotten (entry None). The next
    time the same alert fires, the page must not reuse the first page's `webhook-id`:
    receivers that drop ids they have seen, as the README tells them to, would drop it."""
    first = plan(ctx(T0 + 1), None, [firing(LABELS, {}, T0, "x")], muted=set())
    again = plan(ctx(T0 + 900), None, [firing(LABELS, {}, T0 + 890, "x")], muted=set())
    assert first.notification_id != again.notification_id


def test_a_redo_of_the_same_episode_keeps_its_id() -> None:
    """The same alert state decided again (a retry, a crash before it was recorded, a
    replay) is the same notification, whenever it is flushed."""
    alert = firing(LABELS, {}, T0, "x")
    assert (
        plan(ctx(T0 + 1), None, [alert], muted=set()).notification_id
        == plan(ctx(T0 + 60), None, [alert], muted=set()).notification_id
    )
    # ...and a resolution still follows the recorded firing with an id of its own.
    sent = plan(ctx(T0 + 1), None, [alert], muted=set())
    resolution = plan(ctx(T0 + 9), sent.entry, [resolved(alert, T0 + 8)], muted=set())
    assert resolution.notification_id != sent.notification_id


@pytest.mark.integration
async def test_waiting_for_a_broker_ends_when_it_comes_up() -> None:
    broker = EmbeddedBroker("127.0.0.1", free_port())
    waiting = asyncio.create_task(wait_for_broker([broker.bootstrap], first_delay=0.05))
    await asyncio.sleep(0.3)  # let it try, and fail, a few times
    assert not waiting.done(), "no broker yet: it keeps waiting instead of failing"
    async with broker:
        await asyncio.wait_for(waiting, timeout=15)


async def test_waiting_for_a_broker_can_be_cancelled() -> None:
    waiting = asyncio.create_task(wait_for_broker([f"127.0.0.1:{free_port()}"]))
    await asyncio.sleep(0.1)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


def test_data_dir_problems(tmp_path: Path) -> None:
    assert data_dir_problem(str(tmp_path / "new" / "dir")) is None  # created
    assert (tmp_path / "new" / "dir").is_dir()
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert data_dir_problem(str(blocker / "state")) == "Not a directory"
