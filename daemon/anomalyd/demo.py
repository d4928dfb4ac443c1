"""Realistic synthetic traffic with injected anomalies, for `make run` and `anomalyd demo`.

The generator is pure (event time and an `rng` in, event dicts out) so tests and
backtests get the same stream for the same seed; `produce_demo` only paces it
and writes it to Kafka.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson
import structlog

from anomalyd.domain import format_time
from anomalyd.worker.kafka.producer import EventProducer, connect_producer

log = structlog.get_logger(__name__)

DAY_S = 86_400.0
#: Traffic peaks at 14:00 UTC and bottoms out at 02:00 UTC.
_PEAK_S = 14 * 3600.0


@dataclass(frozen=True)
class DemoStream:
    name: str
    base: float
    daily_amplitude: float
    noise: float
    labels: dict[str, str]


DEFAULT_STREAMS: tuple[DemoStream, ...] = (
    DemoStream("checkout.latency_ms", 230.0, 40.0, 12.0, {"region": "eu-west-1"}),
    DemoStream("payments.error_rate", 0.005, 0.0015, 0.0004, {"region": "eu-west-1"}),
    DemoStream("orders.per_sec", 40.0, 15.0, 3.0, {"region": "us-east-1"}),
    DemoStream("search.latency_ms", 85.0, 20.0, 5.0, {"region": "us-east-1"}),
)


class AnomalyKind(StrEnum):
    SPIKE = "spike"
    DIP = "dip"
    STALL = "stall"


#: Injected in this order, one every `anomaly_every_s` of event time.
ANOMALY_ROTATION: tuple[AnomalyKind, ...] = (AnomalyKind.SPIKE, AnomalyKind.DIP, AnomalyKind.STALL)
#: How long each kind lasts; a stall outlasts an absence rule with `for: 10s`.
ANOMALY_DURATION_S: dict[AnomalyKind, float] = {
    AnomalyKind.SPIKE: 3.0,
    AnomalyKind.DIP: 3.0,
    AnomalyKind.STALL: 20.0,
}
_FACTOR: dict[AnomalyKind, float] = {AnomalyKind.SPIKE: 5.0, AnomalyKind.DIP: 0.1}


@dataclass(frozen=True)
class Anomaly:
    """One injected anomaly: `stream` misbehaves over event time [start_ts, end_ts)."""

    kind: AnomalyKind
    stream: str
    start_ts: float
    end_ts: float

    def covers(self, stream: str, ts: float) -> bool:
        return stream == self.stream and self.start_ts <= ts < self.end_ts


@dataclass(frozen=True)
class DemoTick:
    """Everything emitted at one instant of event time."""

    ts: float
    events: tuple[dict[str, Any], ...]
    injected: tuple[Anomaly, ...]


def daily_shape(ts: float) -> float:
    """The daily cycle in [-1, 1]: 1 at 14:00 UTC, -1 at 02:00 UTC."""
    phase = (ts - _PEAK_S) % DAY_S / DAY_S
    return math.cos(2.0 * math.pi * phase)


def expected_value(stream: DemoStream, ts: float) -> float:
    """The noise-free, anomaly-free value of `stream` at event time `ts`."""
    return stream.base + stream.daily_amplitude * daily_shape(ts)


def demo_ticks(
    streams: Sequence[DemoStream],
    start_ts: float,
    interval_s: float,
    rng: random.Random,
    anomaly_every_s: float = 60.0,
) -> Iterator[DemoTick]:
    """Infinite ticks, `interval_s` apart: one event per stream that is not stalled.

    The first anomaly starts `anomaly_every_s` after `start_ts` (models get a
    clean warm-up), then one more every `anomaly_every_s`, kinds in rotation.
    """
    if not streams:
        raise ValueError("demo needs at least one stream")
    if interval_s <= 0 or anomaly_every_s <= 0:
        raise ValueError("interval_s and anomaly_every_s must be positive")
    active: list[Anomaly] = []
    injected_count = 0
    for step in itertools.count():
        ts = start_ts + step * interval_s
        new: list[Anomaly] = []
        while ts >= start_ts + (injected_count + 1) * anomaly_every_s:
            kind = ANOMALY_ROTATION[injected_count % len(ANOMALY_ROTATION)]
            new.append(_pick_anomaly(kind, streams, active + new, ts, rng))
            injected_count += 1
        active = [a for a in active + new if a.end_ts > ts]
        events = tuple(
            _event(stream, ts, rng, active)
            for stream in streams
            if not any(a.kind is AnomalyKind.STALL and a.covers(stream.name, ts) for a in active)
        )
        yield DemoTick(ts=ts, events=events, injected=tuple(new))


def demo_events(
    streams: Sequence[DemoStream],
    start_ts: float,
    interval_s: float,
    rng: random.Random,
    anomaly_every_s: float = 60.0,
) -> Iterator[dict[str, Any]]:
    """Infinite event dicts in the input schema: `{"stream", "ts", "value", "labels"}`."""
    for tick in demo_ticks(streams, start_ts, interval_s, rng, anomaly_every_s):
        yield from tick.events


def _pick_anomaly(
    kind: AnomalyKind,
    streams: Sequence[DemoStream],
    busy: Sequence[Anomaly],
    ts: float,
    rng: random.Random,
) -> Anomaly:
    # Prefer a stream that is behaving: a spike on a stalled stream shows nothing.
    calm = [s for s in streams if not any(a.covers(s.name, ts) for a in busy)]
    stream = rng.choice(calm or list(streams))
    return Anomaly(kind, stream.name, ts, ts + ANOMALY_DURATION_S[kind])


def _event(
    stream: DemoStream, ts: float, rng: random.Random, active: Sequence[Anomaly]
) -> dict[str, Any]:
    value = expected_value(stream, ts) + rng.gauss(0.0, stream.noise)
    for anomaly in active:
        if anomaly.covers(stream.name, ts):
            value *= _FACTOR.get(anomaly.kind, 1.0)
    # Every demo stream measures something non-negative.
    return {
        "stream": stream.name,
        "ts": format_time(ts),
        "value": round(max(value, 0.0), 6),
        "labels": dict(stream.labels),
    }


async def produce_demo(
    bootstrap: str,
    topic: str,
    rate_per_s: float,
    clock: Callable[[], float],
    duration_s: float | None = None,
    seed: int = 7,
    connect_deadline_s: float = 60.0,
    anomaly_every_s: float = 60.0,
) -> int:
    """Write demo traffic to `topic` at about `rate_per_s` events/s in total; how many.

    Runs until `duration_s` of event time has been produced, or until cancelled.
    """
    if rate_per_s <= 0:
        raise ValueError("rate_per_s must be positive")
    producer = await connect_producer(bootstrap, connect_deadline_s)
    try:
        start = clock()
        until = None if duration_s is None else start + duration_s
        ticks = _paced_ticks(rate_per_s, start, seed, anomaly_every_s)
        return await _produce(producer, topic, ticks, clock, until)
    finally:
        await producer.stop()


def _paced_ticks(
    rate_per_s: float, start: float, seed: int, anomaly_every_s: float
) -> Iterator[DemoTick]:
    # One tick sends one event per stream, so ticks come len(streams) / rate apart.
    interval = len(DEFAULT_STREAMS) / rate_per_s
    return demo_ticks(DEFAULT_STREAMS, start, interval, random.Random(seed), anomaly_every_s)


async def _produce(
    producer: EventProducer,
    topic: str,
    ticks: Iterator[DemoTick],
    clock: Callable[[], float],
    until: float | None,
) -> int:
    log.info("demo_started", topic=topic, streams=[s.name for s in DEFAULT_STREAMS])
    produced = 0
    for tick in ticks:
        if until is not None and tick.ts >= until:
            break
        await _pace(clock, tick.ts)
        for anomaly in tick.injected:
            log.info(
                "demo_anomaly_injected",
                kind=anomaly.kind.value,
                stream=anomaly.stream,
                duration_s=anomaly.end_ts - anomaly.start_ts,
            )
        produced += await _send_tick(producer, topic, tick, clock())
    await producer.flush()
    log.info("demo_finished", produced=produced)
    return produced


async def _pace(clock: Callable[[], float], due: float) -> None:
    delay = due - clock()
    # Even when behind schedule, yield so a fast loop never starves the event loop.
    await asyncio.sleep(max(delay, 0.0))


async def _send_tick(producer: EventProducer, topic: str, tick: DemoTick, now: float) -> int:
    stamp = format_time(now)
    for event in tick.events:
        payload = orjson.dumps({**event, "ts": stamp})
        delivery = await producer.send(topic, payload, key=event["stream"].encode())
        delivery.add_done_callback(_log_send_failure)
    return len(tick.events)


def _log_send_failure(delivery: asyncio.Future[Any]) -> None:
    if not delivery.cancelled() and delivery.exception() is not None:
        log.warning("demo_send_failed", error=repr(delivery.exception()))
