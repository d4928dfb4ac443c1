"""Hostile input: many malformed events (random bytes, truncated JSON, huge payloads, deep
nesting, NaN and infinities, wrong types, control characters, CRLF and Unicode line
separators in labels, unknown fields, an event of megabytes compressed to a few KB on the
wire, a broker timestamp in the year 10000, an event dated 2199, ...) interleaved with
valid ones, among them events with 512 KiB keys and thousands of one-event streams. The
worker never crashes; every malformed event is in events.dlq with a reason, byte for byte
(or, if too large to send whole, its beginning with its original size); every valid one
is scored; its memory stays bounded (streams past ingest.max_streams are evicted).

Hostile requests and silences too: bad Authorization bytes, out-of-range times, wrong
types and non-UTF-8 bodies answer 4xx, never 5xx; a silence whose regex backtracks
catastrophically under Python's `re` is matched in linear time; malformed silences written
straight to the silences topic are skipped. State snapshots written straight to the state
topic (a pickle that would create a file when loaded, under either version's header, and
broken JSON) run nothing and their streams start afresh. The worker keeps answering
/healthz within 1 s and keeps judging the events behind them."""

from __future__ import annotations

import asyncio
import pickle
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from harness import (
    Peak,
    Row,
    WebhookSink,
    build_corpus,
    counts,
    metric,
    produce_fast,
    raw_request,
    read_topic,
    rss_mb,
    sample_worker,
    scenario_config,
    settle,
    size,
)

from anomalyd.decide.state_codec import FORMAT, PICKLE_FORMAT
from anomalyd.worker.kafka.broker import EmbeddedBroker
from anomalyd.worker.kafka.deadletter import dead_letter
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
    sampler = asyncio.create_task(sample_worker(worker, peak, healthz))
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


# --- hostile requests and silences ------------------------------------------------------------

TOKEN = "hostile-api-token-0123456789"
FINGERPRINT = "0123456789abcdef"
#: Python's re tries every split of the letters among the groups: 2^32 ways for 32 letters.
BACKTRACKING = 'team=~"([a-z]+)*-prod"'
TEAM = "a" * 32
FAR_FUTURE = "2099-01-01T00:00:00Z"


def _silence(**fields: Any) -> bytes:
    return _dumps({"matchers": ['stream="nothing"'], "endsAt": FAR_FUTURE, **fields})


def hostile_requests() -> list[tuple[str, str, bytes, bytes, int]]:
    """(method, path, headers, body, the status it must get)."""
    auth = f"Authorization: Bearer {TOKEN}\r\n".encode()
    odd = b"Authorization: Bearer \xff\r\n"
    feedback = f"/api/alerts/{FINGERPRINT}/feedback"
    link = (
        f"{feedback}?label=true_positive&exp=1e300&stream=%ED%A0%80&alertname=a"
        "&detector=rules&sig=%FF"
    )
    spaces = " " * 30_000  # a backtracking matcher parse took seconds on this
    return [
        ("POST", "/api/silences", odd, _silence(), 401),
        ("DELETE", "/api/silences/x", odd, b"", 401),
        ("POST", feedback, odd, b'{"label": "true_positive"}', 401),
        ("POST", "/api/silences", auth, _silence(endsAt=1e300), 400),
        ("POST", "/api/silences", auth, _silence(startsAt="0001-01-01T00:00:00+01:00"), 400),
        (
            "POST",
            "/api/silences",
            auth,
            b'{"matchers": ["a=b"], "endsAt": 1' + b"0" * 400 + b"}",
            400,
        ),
        ("POST", "/api/silences", auth, _silence(id=[1]), 400),
        ("POST", "/api/silences", auth, b'{"matchers": ["a=\xff"], "endsAt": 4e9}', 400),
        ("POST", "/api/silences", auth, _silence(matchers=['team=~"(a)\\\\1"']), 400),
        ("POST", "/api/silences", auth, _silence(matchers=[f'a="{spaces}x" {spaces}y']), 400),
        ("POST", "/api/silences", auth, b"[" * 5000 + b"]" * 5000, 400),
        ("POST", feedback, auth, b'{"label": 5}', 400),
        ("POST", feedback, auth, b"\xff\xfe", 400),
        ("GET", link, b"", b"", 403),
        ("GET", "/api/status?limit=99999999999999999999", b"", b"", 400),
        ("GET", "/api/alerts?status=%FF", b"", b"", 400),
        ("GET", "/api/v2/alerts?receiver=(a)%5C1", b"", b"", 400),
        ("GET", "/api/v2/alerts?filter=a%3D~%22(a)%5C1%22", b"", b"", 400),
        ("GET", "/api/v2/alerts?filter=%FF&silenced=%FF", b"", b"", 400),
        ("GET", "/api/v2/silences?filter=" + "x" * 5000, b"", b"", 400),
        ("GET", "/api/v2/silence/%ED%A0%80", b"", b"", 404),
        ("DELETE", "/api/v2/silence/" + "x" * 5000, auth, b"", 404),
        ("GET", "/api/silences/%ED%A0%80", b"", b"", 404),
        ("DELETE", "/api/silences/" + "x" * 5000, auth, b"", 404),
    ]


def hostile_topic_silences() -> list[tuple[bytes | None, bytes | None]]:
    """Records written straight to the silences topic: each is skipped, none stops the
    valid one after them."""
    return [
        (b"\xff", _silence(id="x")),  # a key that is not UTF-8
        (b"forever", _silence(id="forever", matchers=[BACKTRACKING], endsAt=None)),
        (b"backref", _silence(id="backref", matchers=['team=~"(a)\\\\1"'])),
        (b"far", _silence(id="far", endsAt=1e300)),
        (b"not-its-key", _silence(id="other")),
        (b"list", b"[]"),
        (b"last", _silence(id="last")),
    ]


class TouchOnLoad:
    """A pickle that creates a file when loaded: harmless, and visible from outside."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return Path.touch, (self.path,)


def hostile_state(marker: Path) -> dict[bytes, bytes]:
    """Stream snapshots written straight to the state topic, by stream: none is run."""
    return {
        b"hostile.state.v1": PICKLE_FORMAT + pickle.dumps(TouchOnLoad(marker)),
        b"hostile.state.v2": FORMAT + pickle.dumps(TouchOnLoad(marker)),
        b"hostile.state.json": FORMAT + b'{"mode": "hybrid", "rules": [',
    }


async def write_state(bootstrap: str, topic: str, records: dict[bytes, bytes]) -> None:
    """One record per request (the embedded broker misreports the end of a partition after
    a batch of several, which the state restore reads up to)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for key, value in records.items():
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def test_hostile_requests_and_silences_neither_freeze_nor_blind_the_worker(
    broker: EmbeddedBroker,
    webhook_sink: WebhookSink,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
    record: Callable[[Row], None],
) -> None:
    corpus = build_corpus(*size((1_200, 20, 5), (20_000, 100, 20)), seed=67)
    path, config = scenario_config(
        tmp_path,
        broker.bootstrap,
        [webhook_sink.receiver()],
        http={"api_token": TOKEN, "feedback_secret": "hostile-feedback-secret"},
    )
    worker = start_worker(path, config)
    await worker.wait_ready()
    port, topics = config["http"]["port"], config["topics"]

    answers = [
        (method, target[:60], expected, *await raw_request(port, method, target, head, body))
        for method, target, head, body, expected in hostile_requests()
    ]
    wrong = [(m, t, want, got) for m, t, want, got, _ in answers if got != want]
    slowest = max(took for *_, took in answers)
    backtracking = {"matchers": [BACKTRACKING], "endsAt": FAR_FUTURE}
    created = worker.call("POST", "/api/silences", backtracking, token=TOKEN)
    await produce_fast(broker.bootstrap, topics["silences"], hostile_topic_silences())

    # A stream whose alert carries the label the silence backtracks on, then the corpus.
    now = time.time()
    team = [
        {"stream": "hostile.team", "ts": now + i, "value": v, "labels": {"team": TEAM}}
        for i, v in enumerate([100.0, 1000.0, 100.0])
    ]
    health: list[float] = []

    async def sample_health() -> None:
        while True:  # cancelled once the run is judged
            started = time.monotonic()
            status, _ = await asyncio.to_thread(worker.get, "/healthz")
            health.append(time.monotonic() - started if status == 200 else float("inf"))
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample_health())
    try:
        await produce_fast(broker.bootstrap, topics["events"], [*team, *corpus.events])
        wanted = {*corpus.streams, "hostile.team"}
        complete = await settle(lambda: webhook_sink.tally, wanted, timeout=size(60, 300))
    finally:
        sampler.cancel()
    status, listed = worker.get("/api/silences")
    ids = sorted(silence["id"] for silence in orjson.loads(listed)) if status == 200 else []
    worker.assert_running()

    tally = webhook_sink.tally
    notified = tally.notified(corpus.streams)
    record(
        Row(
            f"hostile HTTP: {len(answers)} requests, {len(hostile_topic_silences())} silences",
            len(corpus.events) + len(team),
            len(corpus.anomalies),
            notified,
            len(corpus.anomalies) - notified,
            tally.duplicates(),
            None,
            f"{len(wrong)} wrong answers; slowest request {slowest * 1000:.0f} ms; "
            f"/healthz max {max(health, default=0) * 1000:.0f} ms",
        )
    )
    assert wrong == [], f"(method, path, expected, got): {wrong}"
    assert slowest < 1.0, f"a request took {slowest:.1f} s"
    assert created[0] == 200, "the backtracking silence is a valid one"
    assert health, "/healthz was asked"
    assert max(health) < 1.0, f"/healthz took up to {max(health):.1f} s"
    assert complete, "the events behind the silence are judged and notified"
    assert tally.has("hostile.team", "firing"), "not muted: the silence's regex does not match"
    assert "last" in ids, "the silences topic is still followed after the hostile records"
    assert not {"forever", "backref", "far", "other", "x"} & set(ids), ids

    # After a restart the silence comes back from the topic (it froze every restart
    # before): the worker starts, and judges and notifies as before. Hostile snapshots in
    # the state topic run nothing (a pickle was loaded, and run, before).
    worker.stop()
    marker = tmp_path / "unpickled"
    state = hostile_state(marker)
    await write_state(broker.bootstrap, f"{config['app']['id']}-state", state)
    again = start_worker(path, config)
    await again.wait_ready()
    assert not marker.exists(), "a snapshot in the state topic was unpickled"
    [refused] = [x for x in again.log_lines() if x.get("event") == "state_snapshots_refused"]
    assert (refused["streams"], refused["old_format"]) == (len(state), 1)
    silence_id = orjson.loads(created[1])["silenceID"]
    assert silence_id in {s["id"] for s in orjson.loads(again.get("/api/silences")[1])}
    after = [
        {**event, "stream": stream, "ts": time.time() + i}
        for stream in ("hostile.after", *(key.decode() for key in state))
        for i, event in enumerate(team)
    ]
    await produce_fast(broker.bootstrap, topics["events"], after)
    streams = {"hostile.after", *(key.decode() for key in state)}
    assert await settle(lambda: webhook_sink.tally, streams, timeout=60)
    assert again.get("/healthz")[0] == 200
    assert not marker.exists()
