"""Delivery in the worker: read alerts from the alerts topic and hand them to the
notify pipeline; dead-letter what it gives up on. Owns the HTTP client session."""

from __future__ import annotations

import aiohttp
import orjson
from mode import Service

from anomalyd.clock import Clock
from anomalyd.config import AnomalydConfig, LogReceiver, WebhookReceiver
from anomalyd.domain import Alert
from anomalyd.metrics import Metrics
from anomalyd.notify import (
    DeadLetter,
    Dispatcher,
    LogNotifier,
    Notifier,
    RetryPolicy,
    WebhookNotifier,
)
from anomalyd.worker.runtime import Sender


class Delivery(Service):
    def __init__(self, config: AnomalydConfig, clock: Clock, metrics: Metrics) -> None:
        super().__init__()
        self.config = config
        self.clock = clock
        self.metrics = metrics
        self._session: aiohttp.ClientSession | None = None
        self._dispatcher: Dispatcher | None = None

    def attach(self, *, send_alert_dlq: Sender) -> None:
        """Connect the dead-letter output (the app's alerts.dlq topic) once it exists."""
        self._send_alert_dlq = send_alert_dlq

    async def on_start(self) -> None:
        self._session = aiohttp.ClientSession()
        self._dispatcher = Dispatcher(
            self._notifiers(self._session),
            RetryPolicy.from_config(self.config.delivery),
            self.clock,
            self._dead_letter,
            self.metrics,
        )

    async def on_stop(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def deliver(self, raw: bytes) -> None:
        """Deliver one alert record from the alerts topic."""
        if self._dispatcher is None:
            raise RuntimeError("the delivery service has not started")
        await self._dispatcher.dispatch(Alert.from_json(orjson.loads(raw)))

    def _notifiers(self, session: aiohttp.ClientSession) -> list[Notifier]:
        notifiers: list[Notifier] = []
        for receiver in self.config.receivers:
            match receiver:
                case WebhookReceiver():
                    external_url = self.config.app.external_url
                    notifiers.append(WebhookNotifier(receiver, external_url, session, self.clock))
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
