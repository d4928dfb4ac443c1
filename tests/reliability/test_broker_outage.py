"""Broker outage: the broker is not there when the worker starts, and later freezes
(SIGSTOP) for a while mid-run, then comes back (SIGCONT). The worker says it is not ready
meanwhile, recovers by itself, and loses nothing."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from harness import Row, WebhookSink, build_corpus, produce_fast, scenario_config, settle, size

from anomalyd.worker.kafka.admin import free_port
from anomalyd.worker.kafka.broker import EmbeddedBroker
from helpers import WorkerProcess

pytestmark = [
    pytest.mark.integration,
    pytest.mark.reliability,
    pytest.mark.slow,  # left out of `make test` for its time; `make reliability` runs it
    pytest.mark.timeout(size(180, 600)),
]

EVENTS, STREAMS, ANOMALIES = size((4_000, 40, 10), (20_000, 200, 100))
ABSENT_AT_START = size(4.0, 15.0)  # seconds the worker runs before the broker exists
FROZEN = size(10.0, 30.0)  # seconds the broker is stopped mid-run


@pytest_asyncio.fixture
async def own_broker() -> AsyncIterator[EmbeddedBroker]:
    """A broker of this test's own (not yet started): the others' must not freeze."""
    broker = EmbeddedBroker("127.0.0.1", free_port())
    yield broker
    if broker.pid is not None:
        os.kill(broker.pid, signal.SIGCONT)  # never leave a stopped process behind
    await broker.stop()


def not_ready(worker: WorkerProcess) -> bool:
    worker.assert_running()
    return worker.get("/readyz")[0] != 200


async def test_the_worker_waits_for_the_broker_and_rides_out_a_freeze(
    own_broker: EmbeddedBroker,
    webhook_sink: WebhookSink,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
    record: Callable[[Row], None],
) -> None:
    corpus = build_corpus(EVENTS, STREAMS, ANOMALIES, seed=55)
    first, second = corpus.parts(2, random.Random(55))
    path, config = scenario_config(tmp_path, own_broker.bootstrap, [webhook_sink.receiver()])
    topic = config["topics"]["events"]

    # 1. No broker at start: the worker keeps trying and says it is not ready.
    worker = start_worker(path, config)
    deadline = time.monotonic() + ABSENT_AT_START
    while time.monotonic() < deadline:  # bounded: watch it for the whole absence
        assert not_ready(worker), "not ready without a broker"
        await asyncio.sleep(0.5)
    waiting = [line for line in worker.log_lines() if line.get("event") == "broker_unavailable"]
    assert waiting, "the log says what the worker waits for"
    await own_broker.start()
    broker_up = time.monotonic()
    await worker.wait_ready(timeout=90)
    ready_after_start = time.monotonic() - broker_up
    await produce_fast(own_broker.bootstrap, topic, first)

    # 2. The broker freezes mid-run, with events in flight.
    assert own_broker.pid is not None
    os.kill(own_broker.pid, signal.SIGSTOP)
    frozen_at = time.monotonic()
    noticed = False
    while time.monotonic() < frozen_at + FROZEN:
        noticed = noticed or not_ready(worker)
        await asyncio.sleep(0.5)
    os.kill(own_broker.pid, signal.SIGCONT)
    thawed_at = time.monotonic()
    await produce_fast(own_broker.bootstrap, topic, second)
    complete = await settle(lambda: webhook_sink.tally, corpus.streams, timeout=size(90, 240))
    worker.assert_running()
    tally = webhook_sink.tally
    arrivals = [a.at for a in tally.arrivals if a.at >= thawed_at]
    notified = tally.notified(corpus.streams)
    record(
        Row(
            f"broker absent {ABSENT_AT_START:g} s at start, frozen {FROZEN:g} s",
            len(corpus.events),
            ANOMALIES,
            notified,
            ANOMALIES - notified,
            tally.duplicates(),
            max(ready_after_start, (max(arrivals) - thawed_at) if arrivals else 0.0),
            "recover: broker back to ready / to every alert delivered",
        )
    )
    missing = sorted(
        (s, st) for s in corpus.streams for st in ("firing", "resolved") if not tally.has(s, st)
    )
    assert complete, f"not notified: {missing}"
    assert tally.unexpected(corpus.streams) == set()
    assert tally.unmarked_duplicates() == {}
    assert noticed, "/readyz said not ready while the broker was frozen"
