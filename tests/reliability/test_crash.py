"""Crash: the worker is SIGKILLed at random points while events flow, and restarted at
once. Every injected anomaly must still be notified firing and then resolved; a
notification sent twice must carry the same `webhook-id`, so receivers can drop it."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from harness import (
    Row,
    WebhookSink,
    build_corpus,
    judge_after_crash,
    produce_fast,
    scenario_config,
    settle,
    size,
)

from anomalyd.worker.kafka.broker import EmbeddedBroker
from helpers import WorkerProcess, eventually

pytestmark = [pytest.mark.integration, pytest.mark.reliability, pytest.mark.timeout(size(240, 900))]

EVENTS, STREAMS, ANOMALIES = size((6_000, 60, 15), (50_000, 200, 100))
KILLS = 3
RATE = size(1_000, 1_000)  # events per second produced while the worker is killed


async def test_sigkill_at_random_points_loses_no_alert(
    broker: EmbeddedBroker,
    webhook_sink: WebhookSink,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
    record: Callable[[Row], None],
) -> None:
    rng = random.Random(8)
    corpus = build_corpus(EVENTS, STREAMS, ANOMALIES, seed=8)
    path, config = scenario_config(tmp_path, broker.bootstrap, [webhook_sink.receiver()])
    worker = start_worker(path, config, "run0")
    await worker.wait_ready()

    topic = config["topics"]["events"]
    producing = asyncio.create_task(produce_fast(broker.bootstrap, topic, corpus.events, rate=RATE))
    run_time = len(corpus.events) / RATE
    recoveries = []
    for n in range(1, KILLS + 1):
        # A random point in this third of the run: the fault, not a wait for a condition.
        await asyncio.sleep(rng.uniform(0.2, 1.0) * run_time / KILLS)
        worker.kill()
        killed_at = time.monotonic()
        worker = start_worker(path, config, f"run{n}")
        await worker.wait_ready(timeout=90)
        recoveries.append(time.monotonic() - killed_at)
    await producing

    complete = await settle(lambda: webhook_sink.tally, corpus.streams, timeout=size(90, 300))
    worker.assert_running()
    tally = webhook_sink.tally
    notified = tally.notified(corpus.streams)
    row = Row(
        "crash: SIGKILL x3, restart",
        len(corpus.events),
        ANOMALIES,
        notified,
        ANOMALIES - notified,
        tally.duplicates(),
        max(recoveries),
        f"{len(tally.unmarked_duplicates())} re-sent under a new id; "
        "recover: kill to ready (worst of 3)",
    )
    record(row)
    assert webhook_sink.bad_signatures == []
    assert tally.unexpected(corpus.streams) == set(), "only injected anomalies alert"
    assert complete or row.lost > 0, "settled means nothing is missing"
    judge_after_crash(tally, corpus.streams)


async def committed(bootstrap: str, group: str, topic: str) -> int:
    """How many records of `topic` the consumer group has committed, over all partitions
    (read without joining the group: partitions assigned by hand)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        return sum([(await consumer.committed(tp)) or 0 for tp in tps])
    finally:
        await consumer.stop()


@pytest.mark.slow
async def test_a_crash_between_firing_and_resolution_still_resolves(
    broker: EmbeddedBroker,
    webhook_sink: WebhookSink,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
    record: Callable[[Row], None],
) -> None:
    """A crash just after the events that fired an alert were committed. Offsets are
    committed only once the state they led to is written (every 2 s here), so the
    restarted worker knows the alert fires, and resolves it when the stream calms down."""
    path, config = scenario_config(
        tmp_path, broker.bootstrap, [webhook_sink.receiver()], state={"snapshot_interval": "2s"}
    )
    worker = start_worker(path, config, "before")
    await worker.wait_ready()
    topic, now = config["topics"]["events"], time.time()
    hot = [{"stream": "db.latency_ms", "ts": now + i, "value": v} for i, v in enumerate([90, 900])]
    await produce_fast(broker.bootstrap, topic, hot)
    await eventually(lambda: webhook_sink.tally.has("db.latency_ms", "firing"), what="firing")

    async def all_committed() -> bool:
        return await committed(broker.bootstrap, config["app"]["id"], topic) >= len(hot)

    await eventually(
        all_committed,
        timeout=30,
        what="the firing events committed",
    )
    worker.kill()
    killed_at = time.monotonic()

    worker = start_worker(path, config, "after")
    await worker.wait_ready()
    ready_after = time.monotonic() - killed_at
    calm = [{"stream": "db.latency_ms", "ts": now + 2 + i, "value": 90} for i in range(3)]
    await produce_fast(broker.bootstrap, topic, calm)
    resolved = await settle(lambda: webhook_sink.tally, ["db.latency_ms"], timeout=10)
    tally = webhook_sink.tally
    record(
        Row(
            "crash right after a commit",
            len(hot) + len(calm),
            1,
            int(resolved),
            int(not resolved),
            tally.duplicates(),
            ready_after,
            "the alert fired, its events were committed, then SIGKILL; recover: kill to ready",
        )
    )
    assert resolved, "the alert stays firing at the receiver"
