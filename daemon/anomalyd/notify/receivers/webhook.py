"""The webhook receiver: POST Alertmanager's v4 payload to a URL, signed per the
Standard Webhooks spec when the receiver has a secret.

`webhook-id` is the notification's id: the same on every retry and after a restart,
so a receiver can use it to drop duplicates. `webhook-timestamp` is the time of
each attempt. The body sent is byte for byte the body signed.
"""

from __future__ import annotations

import aiohttp
import orjson
import structlog

from anomalyd.clock import Clock
from anomalyd.config import WebhookReceiver, signing_key
from anomalyd.notify.notification import Notification
from anomalyd.notify.payload import notification_payload
from anomalyd.notify.receivers._http import base_headers, post
from anomalyd.notify.receivers.signing import signature_headers

_log = structlog.get_logger(__name__)


class WebhookNotifier:
    def __init__(
        self,
        receiver: WebhookReceiver,
        external_url: str,
        session: aiohttp.ClientSession,
        clock: Clock,
    ) -> None:
        self.name = receiver.name
        self._receiver = receiver
        self._external_url = external_url
        self._session = session
        self._clock = clock
        self._headers = base_headers(receiver)
        self._keys = tuple(
            signing_key(secret.get_secret_value()) for secret in receiver.signing_secrets
        )

    async def send(self, notification: Notification) -> None:
        payload = notification_payload(notification, self._external_url, self._receiver.max_alerts)
        body = orjson.dumps(payload)
        timestamp = int(self._clock.now())
        signed = signature_headers(self._keys, notification.notification_id, timestamp, body)
        await post(
            self._session,
            self._receiver.url,
            body,
            {**self._headers, **signed},
            self._receiver.timeout,
            self._clock,
        )
        _log.debug(
            "webhook_delivered",
            receiver=self.name,
            webhook_id=notification.notification_id,
            alerts=len(notification.alerts),
            signed=bool(self._keys),
        )
