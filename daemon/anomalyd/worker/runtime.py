"""What the worker does with each event, minus Kafka: decode, judge, emit alerts.
The Faust app (`app.py`) only moves messages in and out of this."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import orjson
import structlog
from mode import Service

from anomalyd.clock import Clock
from anomalyd.config import AnomalydConfig
from anomalyd.decide import Engine
from anomalyd.domain import Alert, Event
from anomalyd.ingest import InvalidEvent, Limits, parse_event
from anomalyd.metrics import Metrics

_log = structlog.get_logger(__name__)

#: Send bytes to a topic: (key, value, headers).
Sender = Callable[[bytes, bytes, list[tuple[str, bytes]]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Rejected:
    code: str
    detail: str


class Runtime(Service):
    """Owns the detection engine of one worker."""

    def __init__(self, config: AnomalydConfig, clock: Clock, metrics: Metrics) -> None:
        super().__init__()
        self.config = config
        self.clock = clock
        self.metrics = metrics
        self.engine = Engine(config.rules, config.app.external_url)
        self.limits = Limits(
            max_event_bytes=config.ingest.max_event_bytes,
            max_labels=config.ingest.max_labels,
            max_fields=config.ingest.max_fields,
        )
        self.ready = False
        self._stream_partitions: dict[str, int] = {}

    def log_ready(self) -> None:
        _log.info("worker_ready", streams=self.engine.stream_count)

    def attach(self, *, send_alert: Sender) -> None:
        """Connect the output (the app's alerts topic) once it exists."""
        self._send_alert = send_alert

    # -- ingest ---------------------------------------------------------------

    def validate(self, raw: bytes | None, broker_ts: float | None) -> Event | Rejected:
        self.metrics.events.inc()
        try:
            return parse_event(raw if raw is not None else b"", self.limits, default_ts=broker_ts)
        except InvalidEvent as invalid:
            self.metrics.invalid_events.labels(invalid.code).inc()
            _log.warning("event_rejected", reason=invalid.code, detail=invalid.detail)
            return Rejected(invalid.code, invalid.detail)

    # -- detect and decide ----------------------------------------------------

    async def judge(self, event: Event, partition: int, broker_ts: float | None) -> None:
        self._stream_partitions[event.stream] = partition
        changed = self.engine.process(event, now=self.clock.now())
        if broker_ts is not None:
            self.metrics.event_latency.observe(max(0.0, self.clock.now() - broker_ts))
        for alert in changed:
            await self.emit(alert)

    async def check_absence(self) -> None:
        for alert in self.engine.check_absence(self.clock.now()):
            await self.emit(alert)

    async def emit(self, alert: Alert) -> None:
        """Write an alert state change to the alerts topic (the durable outbox)."""
        detector = alert.labels.get("detector", "")
        self.metrics.alerts.labels(alert.status.value, detector).inc()
        _log.info(
            f"alert_{alert.status.value}",
            fingerprint=alert.fingerprint,
            alertname=alert.labels.get("alertname"),
            stream=alert.labels.get("stream"),
            summary=alert.annotations.get("summary"),
        )
        await self._send_alert(alert.fingerprint.encode(), orjson.dumps(alert.to_json()), [])

    def forget_partitions(self, partitions: Iterable[int]) -> None:
        """After a rebalance took partitions away, drop the state of their streams."""
        lost = set(partitions)
        gone = [stream for stream, p in self._stream_partitions.items() if p in lost]
        self.engine.forget(gone)
        for stream in gone:
            del self._stream_partitions[stream]
        self.metrics.streams.set(self.engine.stream_count)
