"""The Alertmanager receiver: push alerts to a real Alertmanager (`POST /api/v2/alerts`),
the way Prometheus does, so its routing, silences and integrations take over.

Alertmanager resolves an alert by itself when its `endsAt` passes. So a firing alert
is sent with `endsAt = now + firing_ttl` and must be sent again before then: the
pipeline's repeat for this receiver does that (repeat_interval plus group_interval
well under `firing_ttl`). A resolved alert carries its real `endsAt` and resolves at
once. If anomalyd stops, its firing alerts resolve in Alertmanager after `firing_ttl`.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import structlog

from anomalyd.clock import Clock
from anomalyd.config import AlertmanagerReceiver
from anomalyd.domain import Alert, AlertStatus, format_time
from anomalyd.notify.notification import Notification
from anomalyd.notify.receivers._http import base_headers, post

_log = structlog.get_logger(__name__)

API_PATH = "/api/v2/alerts"


class AlertmanagerNotifier:
    def __init__(
        self, receiver: AlertmanagerReceiver, session: aiohttp.ClientSession, clock: Clock
    ) -> None:
        self.name = receiver.name
        self._receiver = receiver
        self._session = session
        self._clock = clock
        self._url = receiver.url.rstrip("/") + API_PATH
        self._headers = base_headers(receiver)

    async def send(self, notification: Notification) -> None:
        now = self._clock.now()
        ttl = self._receiver.firing_ttl
        body = orjson.dumps([postable_alert(alert, now, ttl) for alert in notification.alerts])
        await post(
            self._session, self._url, body, self._headers, self._receiver.timeout, self._clock
        )
        _log.debug("alertmanager_delivered", receiver=self.name, alerts=len(notification.alerts))


def postable_alert(alert: Alert, now: float, firing_ttl: float) -> dict[str, Any]:
    """Alertmanager's `postableAlert`: firing until now + firing_ttl, or resolved at endsAt."""
    if alert.status is AlertStatus.RESOLVED:
        ends_at = alert.ends_at if alert.ends_at is not None else now
    else:
        ends_at = now + firing_ttl
    body: dict[str, Any] = {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": format_time(alert.starts_at),
        # Alertmanager rejects an end before the start (event time can run ahead of ours).
        "endsAt": format_time(max(ends_at, alert.starts_at)),
    }
    if alert.generator_url:
        body["generatorURL"] = alert.generator_url
    return body
