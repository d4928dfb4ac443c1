"""Soak: a steady load over many streams for minutes (10 min at 2,000 events/s over 10,000
streams under `make reliability`). After warm-up, resident memory, threads and open file
descriptors stay flat and the p99 of the event-to-verdict latency stays steady; an
anomaly injected every few seconds is notified, firing and resolved, throughout.

Only `make reliability` runs it (`slow`): even reduced, it takes minutes."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from harness import (
    NORMAL,
    SPIKE,
    Row,
    WebhookSink,
    metric,
    open_fds,
    produce_fast,
    rss_mb,
    scenario_config,
    settle,
    size,
    threads,
)

from anomalyd.worker.kafka.broker import EmbeddedBroker
from helpers import WorkerProcess, eventually

DURATION = size(90.0, 600.0)  # seconds of load
RATE = size(2_000, 2_000)  # events per second
STREAMS = size(10_000, 10_000)
WARM_UP = size(30.0, 120.0)  # seconds before the figures must be flat
SAMPLE_EVERY = 5.0
ANOMALY_EVERY = 5.0  # seconds between injected anomalies, each on a stream of its own
#: Allowed after warm-up: RSS growth (MB), threads, open file descriptors.
RSS_SLACK_MB, THREAD_SLACK, FD_SLACK = 40.0, 2, 10

pytestmark = [
    pytest.mark.integration,
    pytest.mark.reliability,
    pytest.mark.slow,
    pytest.mark.timeout(int(DURATION) + 300),
]


def load(start: float) -> Iterator[dict[str, Any]]:
    """RATE events/s for DURATION, over STREAMS streams, stamped with the time they are
    meant to be sent; every ANOMALY_EVERY s a stream of its own spikes and calms."""
    per_anomaly = int(RATE * ANOMALY_EVERY)
    for i in range(int(RATE * DURATION)):
        ts = start + i / RATE
        n, offset = divmod(i, per_anomaly)
        if offset in (0, RATE // 10):  # a spike, then a calm point 0.1 s later
            yield {
                "stream": f"anomaly{n:04d}.ms",
                "ts": ts,
                "value": SPIKE if offset == 0 else NORMAL,
            }
        yield {"stream": f"load{i % STREAMS:05d}.ms", "ts": ts, "value": NORMAL + (i % 7)}


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    rss_mb: float
    threads: int
    fds: int
    buckets: dict[float, float]  # latency histogram: upper bound -> cumulative count


def latency_buckets(worker: WorkerProcess) -> dict[float, float]:
    prefix = 'anomalyd_event_latency_seconds_bucket{le="'
    out = {}
    for line in worker.get("/metrics")[1].decode().splitlines():
        if line.startswith(prefix):
            bound, _, value = line.removeprefix(prefix).partition('"} ')
            out[math.inf if bound == "+Inf" else float(bound)] = float(value)
    return out


def p99(before: dict[float, float], after: dict[float, float]) -> float | None:
    """The p99 between two histogram samples, as the upper bound of its bucket."""
    total = after.get(math.inf, 0.0) - before.get(math.inf, 0.0)
    if total <= 0:
        return None
    for bound in sorted(after):
        if after[bound] - before.get(bound, 0.0) >= 0.99 * total:
            return bound
    return math.inf


async def test_steady_load_keeps_memory_tasks_and_latency_flat(
    broker: EmbeddedBroker,
    webhook_sink: WebhookSink,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
    record: Callable[[Row], None],
) -> None:
    path, config = scenario_config(tmp_path, broker.bootstrap, [webhook_sink.receiver()])
    worker = start_worker(path, config)
    await worker.wait_ready()
    samples: list[Sample] = []

    async def sample() -> None:
        while True:  # cancelled when the load ends
            samples.append(
                Sample(
                    time.monotonic(),
                    rss_mb(worker.pid),
                    threads(worker.pid),
                    open_fds(worker.pid),
                    latency_buckets(worker),
                )
            )
            await asyncio.sleep(SAMPLE_EVERY)

    sampler = asyncio.create_task(sample())
    started = time.monotonic()
    try:
        await produce_fast(
            broker.bootstrap, config["topics"]["events"], load(time.time()), rate=RATE
        )
    finally:
        sampler.cancel()
    produced_for = time.monotonic() - started
    total = int(RATE * DURATION) + 2 * math.ceil(DURATION / ANOMALY_EVERY)
    await eventually(
        lambda: metric(worker, "anomalyd_events_total") >= total,
        timeout=120,
        interval=1.0,
        what="the backlog judged",
    )
    caught_up = time.monotonic() - started - produced_for
    anomalies = {f"anomaly{n:04d}.ms" for n in range(math.ceil(DURATION / ANOMALY_EVERY))}
    complete = await settle(lambda: webhook_sink.tally, anomalies, timeout=60)
    worker.assert_running()

    steady = [s for s in samples if s.at - started >= WARM_UP]
    assert len(steady) >= 3, "enough samples after warm-up"
    first, last = steady[0], steady[-1]
    # p99 over the first and the last third of the steady part: steady if the last is at
    # most one histogram bucket above the first (the buckets are coarse: 50, 100, 250 ms).
    third = max(1, len(steady) // 3)
    early = p99(steady[0].buckets, steady[third].buckets)
    late = p99(steady[-1 - third].buckets, last.buckets)
    assert early is not None, "events were judged throughout"
    assert late is not None
    bounds = sorted(last.buckets)
    tally = webhook_sink.tally
    notified = tally.notified(anomalies)
    record(
        Row(
            f"soak {DURATION:g} s at {RATE:,}/s over {STREAMS:,} streams",
            total,
            len(anomalies),
            notified,
            len(anomalies) - notified,
            tally.duplicates(),
            None,
            f"after warm-up: RSS {first.rss_mb:.0f}->{max(s.rss_mb for s in steady):.0f} MB, "
            f"threads {first.threads}->{last.threads}, fds {first.fds}->{last.fds}, "
            f"p99 {early:g} s early, {late:g} s late; backlog {caught_up:.0f} s",
        )
    )
    assert complete, "every injected anomaly notified, firing and resolved"
    assert max(s.rss_mb for s in steady) - first.rss_mb < RSS_SLACK_MB, "RSS flat"
    assert abs(last.threads - first.threads) <= THREAD_SLACK, "threads flat"
    assert abs(last.fds - first.fds) <= FD_SLACK, "open file descriptors flat"
    assert bounds.index(late) <= bounds.index(early) + 1, f"p99 steady: {early} s, then {late} s"
