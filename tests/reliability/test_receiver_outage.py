"""Receiver outage: the webhook receiver answers 503 and then refuses connections (the SMTP
server answers 451 and then refuses connections) while anomalies happen. Once it is back,
every notification arrives; one that could not be delivered within `delivery.max_age` is
in alerts.dlq with its reason. Nothing is dropped silently."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness import (
    MailSink,
    Row,
    Tally,
    WebhookSink,
    build_corpus,
    dead_letters,
    produce_fast,
    read_topic,
    scenario_config,
    size,
)

from anomalyd.worker.kafka.broker import EmbeddedBroker
from helpers import WorkerProcess, eventually

pytestmark = [pytest.mark.integration, pytest.mark.reliability, pytest.mark.timeout(size(150, 600))]

EVENTS, STREAMS, ANOMALIES = size((3_000, 30, 10), (24_000, 200, 100))
OUTAGE = size(6.0, 120.0)  # seconds: the first half answering 503/451, the second refusing
MAX_AGE = size(4.0, 60.0)  # shorter than the outage: the oldest notifications dead-letter


class Outage:
    """Takes one kind of receiver down softly (an error answer), hard (connections
    refused), and back up."""

    def __init__(self, sink: WebhookSink | MailSink) -> None:
        self.sink = sink

    def tally(self) -> Tally:
        return self.sink.tally

    async def soft(self) -> None:
        self.sink.mode = "503" if isinstance(self.sink, WebhookSink) else "451"

    async def hard(self) -> None:
        if isinstance(self.sink, WebhookSink):
            await self.sink.stop()
        else:
            self.sink.stop()

    async def up(self) -> None:
        self.sink.mode = "ok"
        if isinstance(self.sink, WebhookSink):
            await self.sink.start()
        else:
            self.sink.start()


@pytest.mark.parametrize("kind", ["webhook", pytest.param("email", marks=pytest.mark.slow)])
async def test_after_an_outage_every_notification_arrives_or_is_dead_lettered(
    kind: str,
    broker: EmbeddedBroker,
    webhook_sink: WebhookSink,
    mail_sink: MailSink,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
    record: Callable[[Row], None],
) -> None:
    sink: WebhookSink | MailSink = webhook_sink if kind == "webhook" else mail_sink
    outage = Outage(sink)
    corpus = build_corpus(EVENTS, STREAMS, ANOMALIES, seed=21)
    # Retried without end but for max_age: what is not delivered by then must dead-letter.
    delivery = {
        "max_attempts": 100,
        "initial_backoff": "200ms",
        "max_backoff": size("1s", "5s"),
        "max_age": MAX_AGE,
    }
    path, config = scenario_config(tmp_path, broker.bootstrap, [sink.receiver()], delivery=delivery)
    worker = start_worker(path, config)
    await worker.wait_ready()
    topics = config["topics"]

    # The anomalies happen while the receiver is down: the events are spread over the outage.
    rate = len(corpus.events) / (OUTAGE * 0.8)
    await outage.soft()
    producing = asyncio.create_task(
        produce_fast(broker.bootstrap, topics["events"], corpus.events, rate=rate)
    )
    await asyncio.sleep(OUTAGE / 2)  # holding the fault, not waiting for a condition
    await outage.hard()
    await asyncio.sleep(OUTAGE / 2)
    await producing
    await outage.up()
    recovered_at = time.monotonic()

    expected = {(s, status) for s in corpus.streams for status in ("firing", "resolved")}
    letters: list[Any] = []

    async def accounted() -> bool:
        worker.assert_running()
        letters[:] = dead_letters(await read_topic(broker.bootstrap, topics["alerts_dlq"]))
        lettered = {pair for _, _, pairs in letters for pair in pairs}
        return expected <= set(outage.tally().first_at()) | lettered

    with contextlib.suppress(AssertionError):  # the row below says what is missing
        await eventually(accounted, timeout=size(60, 240), interval=1.0)
    tally = outage.tally()
    arrived = tally.first_at()
    lettered = {pair for _, _, pairs in letters for pair in pairs}
    missing = sorted(expected - set(arrived) - lettered)
    after_outage = [at for at in arrived.values() if at >= recovered_at]
    lost = {stream for stream, _ in missing}
    row = Row(
        f"{kind} receiver outage {OUTAGE:g} s",
        len(corpus.events),
        ANOMALIES,
        ANOMALIES - len(lost),
        len(lost),
        tally.duplicates(),
        max(after_outage) - recovered_at if after_outage else 0.0,
        f"{len(lettered)} of {len(expected)} notifications in alerts.dlq past max_age "
        f"{MAX_AGE:g} s, the rest delivered; recover: back up to last arrival",
    )
    record(row)
    assert missing == [], "every notification arrives or is dead-lettered with a reason"
    assert sink.refused > 0, "the receiver's error answers were retried"
    name = sink.receiver()["name"]
    assert all(r == name and "max_age" in reason for r, reason, _ in letters), letters
    assert not set(arrived) & lettered, "a dead-lettered notification is not sent again"
    assert tally.unexpected(corpus.streams) == set()
    assert tally.unmarked_duplicates() == {}
    if isinstance(sink, WebhookSink):
        assert sink.bad_signatures == []
