"""Hostile receivers: one webhook answers every notification with a redirect (followed, a
POST becomes a body-less GET whose 200 looks delivered), another with an endless body
(read whole, hundreds of megabytes held in memory per notification). The worker follows
neither: the redirected notifications are in alerts.dlq with where they pointed, the
endless answers are cut short, its memory stays flat, /healthz answers under a second,
and the well-behaved receiver gets every page."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from harness import (
    Peak,
    Row,
    WebhookSink,
    build_corpus,
    dead_letters,
    produce_fast,
    read_topic,
    rss_mb,
    sample_worker,
    scenario_config,
    settle,
    size,
)

from anomalyd.worker.kafka.admin import free_port
from anomalyd.worker.kafka.broker import EmbeddedBroker
from helpers import WorkerProcess, eventually

pytestmark = [pytest.mark.integration, pytest.mark.reliability, pytest.mark.timeout(size(180, 600))]

EVENTS, STREAMS, ANOMALIES = size((2_000, 20, 5), (20_000, 100, 20))
ENDLESS_BYTES = 400 * 1024 * 1024  # what the endless receiver would send, per request
CHUNK = b"x" * 65_536
RSS_GROWTH_MB = 100


class Hostile:
    """A receiver on 127.0.0.1: `/moved` answers 302 to `/landing` (which answers 200 to
    anything), `/endless` streams ENDLESS_BYTES; counts what each request got out."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.landed = 0  # requests that followed the redirect
        self.streamed: list[int] = []  # bytes written per endless answer, once it ended
        self._runner: web.AppRunner | None = None

    async def start(self) -> Hostile:
        app = web.Application()
        app.router.add_post("/moved", self._moved)
        app.router.add_route("*", "/landing", self._landing)
        app.router.add_post("/endless", self._endless)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _moved(self, request: web.Request) -> web.Response:
        await request.read()
        raise web.HTTPFound(f"{self.base}/landing?token=S3CRET")

    async def _landing(self, request: web.Request) -> web.Response:
        self.landed += 1
        return web.Response(text="ok")

    async def _endless(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse()
        await response.prepare(request)
        sent = 0
        with contextlib.suppress(ConnectionError):  # the client hung up: count what it had
            while sent < ENDLESS_BYTES:
                await response.write(CHUNK)
                sent += len(CHUNK)
        self.streamed.append(sent)
        return response


@pytest_asyncio.fixture
async def hostile() -> AsyncIterator[Hostile]:
    server = await Hostile().start()
    yield server
    await server.stop()


async def test_redirecting_and_endless_receivers_cost_no_page(
    broker: EmbeddedBroker,
    webhook_sink: WebhookSink,
    hostile: Hostile,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
    record: Callable[[Row], None],
) -> None:
    corpus = build_corpus(EVENTS, STREAMS, ANOMALIES, seed=31)
    receivers = [
        webhook_sink.receiver(),
        {"type": "webhook", "name": "moved", "url": f"{hostile.base}/moved"},
        {"type": "webhook", "name": "endless", "url": f"{hostile.base}/endless"},
    ]
    path, config = scenario_config(tmp_path, broker.bootstrap, receivers)
    worker = start_worker(path, config)
    await worker.wait_ready()
    baseline = rss_mb(worker.pid)
    peak, health = Peak(), Peak()
    sampler = asyncio.create_task(sample_worker(worker, peak, health, interval=0.25))
    topics = config["topics"]
    try:
        await produce_fast(broker.bootstrap, topics["events"], corpus.events)
        complete = await settle(lambda: webhook_sink.tally, corpus.streams, timeout=size(60, 300))
        expected = len(webhook_sink.arrivals)  # one notification per group change, to each
        await eventually(
            lambda: len(hostile.streamed) >= expected, timeout=60, what="every endless answer"
        )
    finally:
        sampler.cancel()
    worker.assert_running()
    records = await read_topic(broker.bootstrap, topics["alerts_dlq"])
    letters = [letter for letter in dead_letters(records) if letter[0] == "moved"]
    tally = webhook_sink.tally
    notified = tally.notified(corpus.streams)
    record(
        Row(
            "hostile receivers: redirect, endless answer",
            len(corpus.events),
            ANOMALIES,
            notified,
            ANOMALIES - notified,
            tally.duplicates(),
            None,
            f"{len(letters)} redirected in alerts.dlq; at most {max(hostile.streamed) >> 20} MB "
            f"of {ENDLESS_BYTES >> 20} MB streamed; RSS {baseline:.0f} -> peak {peak.max:.0f} MB;"
            f" /healthz worst {health.max * 1000:.0f} ms",
        )
    )
    assert complete, "the well-behaved receiver gets every page"
    assert notified == ANOMALIES
    assert hostile.landed == 0, "a redirect was followed"
    assert len(letters) == expected, "every redirected notification is dead-lettered"
    assert {reason for _, reason, _ in letters} == {"not retryable: http_302"}
    assert all(b"redirect 302 to http://127.0.0.1" in r.value for r in records)
    assert not any(b"S3CRET" in r.value for r in records), "where it pointed, cut to the origin"
    assert max(hostile.streamed) < ENDLESS_BYTES // 4, "an endless answer was read on"
    assert peak.max - baseline < RSS_GROWTH_MB, f"RSS grew {peak.max - baseline:.0f} MB"
    assert health.max < 1.0, f"/healthz took {health.max:.2f} s"
