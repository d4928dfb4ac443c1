"""Scale-out: two workers share the work in one consumer group; one is SIGKILLed in the
middle of the stream. The other takes over its partitions and their state, and no
anomaly is missed."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from harness import (
    Row,
    WebhookSink,
    build_corpus,
    judge_after_crash,
    produce_fast,
    scenario_config,
    second_worker_config,
    settle,
    size,
)

from anomalyd.config.schema import KafkaSection
from anomalyd.worker.kafka.broker import EmbeddedBroker
from helpers import WorkerProcess, eventually

pytestmark = [
    pytest.mark.integration,
    pytest.mark.reliability,
    pytest.mark.slow,  # left out of `make test` for its time; `make reliability` runs it
    pytest.mark.timeout(size(180, 600)),
]

EVENTS, STREAMS, ANOMALIES = size((6_000, 60, 15), (50_000, 200, 100))
RATE = size(1_000, 1_000)


def owned(worker: WorkerProcess, topic: str) -> int:
    """How many partitions of the events topic the worker consumes, once ready
    (from /api/status); 0 when it is not ready."""
    worker.assert_running()
    status, body = worker.get("/api/status")
    if status != 200:
        return 0
    lag = orjson.loads(body)["consumer"]["lag"] or []
    return len({row["partition"] for row in lag if row["topic"] == topic})


async def test_a_worker_killed_mid_stream_hands_its_partitions_and_state_over(
    broker: EmbeddedBroker,
    webhook_sink: WebhookSink,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
    record: Callable[[Row], None],
) -> None:
    corpus = build_corpus(EVENTS, STREAMS, ANOMALIES, seed=34)
    path, config = scenario_config(tmp_path, broker.bootstrap, [webhook_sink.receiver()])
    survivor = start_worker(path, config, "survivor")
    victim = start_worker(*second_worker_config(tmp_path, config, "victim"), "victim")
    topic, partitions = config["topics"]["events"], KafkaSection().partitions
    await eventually(
        lambda: 0 < owned(survivor, topic) < partitions and owned(victim, topic) > 0,
        timeout=60,
        interval=0.2,
        what="the two workers sharing the partitions",
    )

    producing = asyncio.create_task(produce_fast(broker.bootstrap, topic, corpus.events, rate=RATE))
    # Mid-stream: somewhere in the middle half of the production.
    await asyncio.sleep(random.Random(34).uniform(0.25, 0.75) * len(corpus.events) / RATE)
    victim.kill()
    killed_at = time.monotonic()
    await eventually(
        lambda: owned(survivor, topic) == partitions,
        timeout=60,
        interval=0.2,
        what="the survivor to take every partition",
    )
    took_over = time.monotonic() - killed_at
    await producing

    complete = await settle(lambda: webhook_sink.tally, corpus.streams, timeout=size(90, 300))
    survivor.assert_running()
    tally = webhook_sink.tally
    notified = tally.notified(corpus.streams)
    record(
        Row(
            "scale-out: 2 workers, SIGKILL one",
            len(corpus.events),
            ANOMALIES,
            notified,
            ANOMALIES - notified,
            tally.duplicates(),
            took_over,
            f"{len(tally.unmarked_duplicates())} re-sent under a new id; "
            "recover: kill to the survivor consuming every partition",
        )
    )
    assert webhook_sink.bad_signatures == []
    assert tally.unexpected(corpus.streams) == set()
    assert complete or notified < ANOMALIES, "settled means nothing is missing"
    judge_after_crash(tally, corpus.streams)
