"""Hostile input: many malformed events (random bytes, truncated JSON, huge payloads, deep
nesting, NaN and infinities, wrong types, control characters, CRLF and Unicode line
separators in labels, unknown fields, an event of megabytes compressed to a few KB on the
wire, a broker timestamp in the year 10000, an event dated 2199, ...) interleaved with
valid ones, among them events with 512 KiB keys and thousands of one-event streams. The
worker never crashes; every malformed event is in events.dlq with a reason, byte for byte
(or, if too large to send whole, its beginning with its original size); every valid one
is scored; its memory stays bounded (streams past ingest.max_streams are evicted)."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from harness import (
    Peak,
    Row,
    WebhookSink,
    build_corpus,
    counts,
    metric,
    produce_fast,
    read_topic,
    rss_mb,
    scenario_config,
    settle,
    size,
)

from anomalyd.worker.broker import EmbeddedBroker
from anomalyd.worker.deadletter import dead_letter
from helpers import WorkerProcess, eventually

pytestmark = [pytest.mark.integration, pytest.mark.reliability, pytest.mark.timeout(size(180, 900))]

MALFORMED = size(5_000, 100_000)
EVENTS, STREAMS, ANOMALIES = size((2_000, 20, 5), (20_000, 100, 20))
MAX_EVENT_BYTES = 65_536  # the default ingest.max_event_bytes
#: RSS growth allowed over the run (MB): fetch buffers and the allocator's slack, not a leak.
RSS_GROWTH_MB = 150
#: Valid events of one-event streams, and the worker's cap on streams (ingest.max_streams).
ONE_EVENT_STREAMS, MAX_STREAMS = size((3_000, 1_000), (200_000, 10_000))
#: Valid events with a unique 512 KiB key each.
HUGE_KEYS = size(100, 600)
#: Events of megabytes (a few KB gzipped): too large for even a dead letter to hold whole.
HUGE_EVENTS = 3
#: The year 10000, in epoch milliseconds: a valid Kafka timestamp, not a valid datetime.
YEAR_10000_MS = 253_402_300_800_000
#: What the worker's producer takes in one request (Faust's producer_max_request_size).
MAX_REQUEST_SIZE = 1_000_000


def _event(**overrides: object) -> dict[str, object]:
    return {"stream": "hostile.latency_ms", "ts": time.time(), "value": 1.0, **overrides}


def _dumps(doc: object) -> bytes:
    return orjson.dumps(doc)


def malformed(rng: random.Random) -> bytes | None:
    """One malformed event, of a kind picked at random."""
    kinds: list[Callable[[], bytes | None]] = [
        lambda: rng.randbytes(rng.randint(1, 300)),  # random bytes
        lambda: _dumps(_event())[: rng.randint(1, 40)],  # truncated JSON
        lambda: (
            _dumps(_event(labels={"blob": "x" * rng.randint(MAX_EVENT_BYTES, 4 * MAX_EVENT_BYTES)}))
            if rng.random() < 0.05  # huge payloads, but not all of them: the broker holds them
            else _dumps(_event(value="1" * 100))
        ),
        lambda: b'{"stream": "a", "ts": 1, "value": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        lambda: (
            b'{"stream": "a", "ts": 1, "value": '
            + rng.choice([b"NaN", b"Infinity", b"-Infinity", b"1e999"])
            + b"}"
        ),
        lambda: _dumps(_event(value=rng.choice(["12", True, None, [1], {"v": 1}]))),  # wrong types
        lambda: _dumps(_event(stream=rng.choice([7, "", "has space", "x" * 201, "-lead", None]))),
        lambda: _dumps(
            _event(ts=rng.choice([[1], "yesterday", "2026-01-01T00:00:00", 1e300, True]))
        ),
        lambda: _dumps(
            _event(
                labels={
                    "team": rng.choice(
                        ["a\r\nBcc: x@evil", "\x00", "\x1b[31m", "t\tab", "a\u0085b", "a\u2028b"]
                    )
                }
            )
        ),
        lambda: _dumps(_event(labels={rng.choice(["alertname", "stream", "bad name", "0x"]): "v"})),
        lambda: _dumps(_event(extra=True)),  # unknown field
        lambda: _dumps(_event(fields={"a": 1})),  # both value and fields
        lambda: _dumps(rng.choice([[], "event", 3, None, True])),  # not an object
        lambda: _dumps(_event(ts="2199-12-31T00:00:00Z")),  # beyond ingest.max_future_skew
        lambda: rng.choice([b"", None]),  # empty message, tombstone
    ]
    return rng.choice(kinds)()


Record = tuple[bytes | None, bytes | None, int | None]


def hostile_records(rng: random.Random) -> tuple[list[Record], list[Record]]:
    """Invalid records beyond malformed JSON, and valid ones that cost memory."""
    huge = [
        (b"huge", _dumps(_event(labels={"blob": "x" * rng.randint(1_100_000, 2_000_000)})), None)
        for _ in range(HUGE_EVENTS)
    ]
    far = [(b"far", b'{"stream": "hostile.far", "value": 1}', YEAR_10000_MS) for _ in range(5)]
    big_keys = [
        (i.to_bytes(4, "big") * (128 * 1024), _dumps(_event(stream="hostile.bigkey")), None)
        for i in range(HUGE_KEYS)
    ]
    streams = [
        (None, _dumps(_event(stream=f"hostile.one.{i}")), None) for i in range(ONE_EVENT_STREAMS)
    ]
    return [*huge, *far], [*big_keys, *streams]


def as_dead_lettered(value: bytes | None) -> bytes:
    """What events.dlq holds for a record of this value: itself, or its beginning."""
    record = type("R", (), {"key": None, "value": value, "topic": "", "partition": 0, "offset": 0})
    return dead_letter(record, "", "", MAX_REQUEST_SIZE).value or b""


def interleave(many: list[Any], few: list[Any]) -> list[Any]:
    """`few` spread evenly through `many`, each list keeping its order."""
    out: list[Any] = []
    step, taken = len(many) / max(1, len(few)), 0
    for i, item in enumerate(few):
        upto = round((i + 1) * step)
        out.extend(many[taken:upto])
        out.append(item)
        taken = upto
    out.extend(many[taken:])
    return out


async def test_malformed_events_are_dead_lettered_and_the_valid_ones_scored(
    broker: EmbeddedBroker,
    webhook_sink: WebhookSink,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
    record: Callable[[Row], None],
) -> None:
    rng = random.Random(66)
    corpus = build_corpus(EVENTS, STREAMS, ANOMALIES, seed=66)
    bad = [malformed(rng) for _ in range(MALFORMED)]
    invalid, valid = hostile_records(rng)
    records: list[Record] = [(f"junk{i % 16}".encode(), v, None) for i, v in enumerate(bad)]
    records += invalid + valid
    rng.shuffle(records)
    bad += [value for _, value, _ in invalid]
    mixed = interleave(records, corpus.events)
    scored = len(corpus.events) + len(valid)

    path, config = scenario_config(
        tmp_path,
        broker.bootstrap,
        [webhook_sink.receiver()],
        ingest={"max_streams": MAX_STREAMS},
    )
    worker = start_worker(path, config)
    await worker.wait_ready()
    baseline = rss_mb(worker.pid)
    peak, healthz = Peak(), Peak()

    async def sample_memory() -> None:
        while True:  # cancelled once the run is judged
            peak.add(rss_mb(worker.pid))
            asked = time.monotonic()
            status, _ = await asyncio.to_thread(worker.get, "/healthz")
            healthz.add(time.monotonic() - asked if status == 200 else float("inf"))
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample_memory())
    started = time.monotonic()
    topics = config["topics"]
    await produce_fast(broker.bootstrap, topics["events"], mixed, compression="gzip")
    total = len(mixed)
    try:
        await eventually(
            lambda: (
                metric(worker, "anomalyd_events_total") >= total
                and metric(worker, "anomalyd_event_latency_seconds_count") >= scored
            ),
            timeout=size(60, 600),
            interval=0.5,
            what="every event read and every valid one scored",
        )
        complete = await settle(lambda: webhook_sink.tally, corpus.streams, timeout=60)
    finally:
        sampler.cancel()
    elapsed = time.monotonic() - started
    worker.assert_running()

    dead = await read_topic(broker.bootstrap, topics["events_dlq"], timeout=120)
    reasons = Counter(dict(r.headers).get("reason", b"").decode().partition(":")[0] for r in dead)
    tally = webhook_sink.tally
    notified = tally.notified(corpus.streams)
    record(
        Row(
            f"hostile input: {MALFORMED:,} malformed",
            total,
            ANOMALIES,
            notified,
            ANOMALIES - notified,
            tally.duplicates(),
            None,
            f"{len(dead):,} in events.dlq; {len(valid):,} valid hostile (huge keys, one-event "
            f"streams: {metric(worker, 'anomalyd_streams_evicted_total'):,.0f} evicted); "
            f"RSS {baseline:.0f} -> peak {peak.max:.0f} MB; /healthz max {healthz.max:.2f} s; "
            f"{elapsed:.0f} s",
        )
    )
    assert sorted(r.value or b"" for r in dead) == sorted(map(as_dead_lettered, bad)), (
        "every malformed event is in events.dlq, byte for byte (or its beginning)"
    )
    truncated = [dict(r.headers) for r in dead if dict(r.headers).get("truncated") == b"true"]
    assert len(truncated) == HUGE_EVENTS
    assert all(int(h["original_size"]) > MAX_REQUEST_SIZE for h in truncated)
    assert "" not in reasons, f"every dead letter has a reason: {counts(reasons.elements())}"
    assert {"oversized", "bad_ts", "future_ts", "bad_labels"} <= set(reasons)
    assert metric(worker, "anomalyd_event_latency_seconds_count") == scored
    assert metric(worker, "anomalyd_streams") <= MAX_STREAMS
    assert complete, "the valid events among the garbage are judged"
    assert notified == ANOMALIES
    assert tally.unexpected(corpus.streams) == set()
    assert peak.max - baseline < RSS_GROWTH_MB, f"RSS grew {peak.max - baseline:.0f} MB"
    assert healthz.max < 1.0, f"/healthz took {healthz.max:.2f} s (or failed) at worst"
    errors = [line for line in worker.log_lines() if line.get("level") in ("error", "critical")]
    assert errors == [], errors[:3]
