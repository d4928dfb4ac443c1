"""What the worker does with each message, minus Kafka: decode, judge, emit,
deliver. The Faust app (`app.py`) only moves messages in and out of this."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import aiohttp
import orjson
import structlog
from mode import Service

from anomalyd.clock import Clock
from anomalyd.config import AnomalydConfig, LogReceiver, WebhookReceiver
from anomalyd.decide import Engine
from anomalyd.domain import Alert, Event
from anomalyd.ingest import InvalidEvent, Limits, parse_event
from anomalyd.metrics import Metrics
from anomalyd.notify import (
    DeadLetter,
    Dispatcher,
    LogNotifier,
    Notifier,
    RetryPolicy,
    WebhookNotifier,
)

_log = structlog.get_logger(__name__)

#: Send bytes to a topic: (key, value, headers).
Sender = Callable[[bytes, bytes, list[tuple[str, bytes]]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Rejected:
    code: str
    detail: str


class Runtime(Service):
    """Owns the detection engine and the delivery resources for one worker."""

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
        self._session: aiohttp.ClientSession | None = None
        self._dispatcher: Dispatcher | None = None
        self._stream_partitions: dict[str, int] = {}

    async def on_start(self) -> None:
        self._session = aiohttp.ClientSession()

    async def on_stop(self) -> None:
        if self._session is not None:
            await self._session.close()

    def log_ready(self) -> None:
        _log.info("worker_ready", streams=self.engine.stream_count)

    def attach(self, *, send_alert: Sender, send_alert_dlq: Sender) -> None:
        """Connect the outputs (the app's topics) once they exist."""
        self._send_alert = send_alert
        self._send_alert_dlq = send_alert_dlq

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

    # -- deliver --------------------------------------------------------------

    async def deliver(self, raw: bytes) -> None:
        await self._dispatcher_for().dispatch(Alert.from_json(orjson.loads(raw)))

    def _dispatcher_for(self) -> Dispatcher:
        if self._dispatcher is None:
            if self._session is None:
                raise RuntimeError("the runtime service has not started")
            self._dispatcher = Dispatcher(
                self._notifiers(self._session),
                RetryPolicy.from_config(self.config.delivery),
                self.clock,
                self._dead_letter,
                self.metrics,
            )
        return self._dispatcher

    def _notifiers(self, session: aiohttp.ClientSession) -> list[Notifier]:
        notifiers: list[Notifier] = []
        for receiver in self.config.receivers:
            match receiver:
                case WebhookReceiver():
                    notifiers.append(
                        WebhookNotifier(receiver, self.config.app.external_url, session, self.clock)
                    )
                case LogReceiver():
                    notifiers.append(LogNotifier(receiver.name))
        return notifiers

    async def _dead_letter(self, letter: DeadLetter) -> None:
        body = orjson.dumps(
            {
                "receiver": letter.receiver,
                "reason": letter.reason,
                "attempts": letter.attempts,
                "alerts": [alert.to_json() for alert in letter.alerts],
            }
        )
        headers = [("reason", letter.reason.encode()), ("receiver", letter.receiver.encode())]
        await self._send_alert_dlq(letter.alerts[0].fingerprint.encode(), body, headers)
