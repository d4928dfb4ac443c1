"""The webhook receiver: POST Alertmanager's v4 payload to a URL."""

from __future__ import annotations

from collections.abc import Sequence
from email.utils import parsedate_to_datetime

import aiohttp
import orjson

from anomalyd.clock import Clock
from anomalyd.config import WebhookReceiver
from anomalyd.domain import Alert
from anomalyd.notify.payload import webhook_payload
from anomalyd.notify.retry import DeliveryError

_RETRYABLE_STATUS = frozenset({408, 425, 429})


class WebhookNotifier:
    def __init__(
        self,
        receiver: WebhookReceiver,
        external_url: str,
        session: aiohttp.ClientSession,
        clock: Clock,
    ) -> None:
        self.name = receiver.name
        self._clock = clock
        self._receiver = receiver
        self._external_url = external_url
        self._session = session

    async def send(self, alerts: Sequence[Alert]) -> None:
        body = orjson.dumps(webhook_payload(self.name, alerts, self._external_url))
        headers = {"Content-Type": "application/json", **self._receiver.headers}
        timeout = aiohttp.ClientTimeout(total=self._receiver.timeout)
        try:
            async with self._session.post(
                self._receiver.url, data=body, headers=headers, timeout=timeout
            ) as response:
                await response.read()
                _raise_for(response.status, response.headers.get("Retry-After"), self._clock.now())
        except TimeoutError as error:
            raise DeliveryError(
                "timeout", f"no answer in {self._receiver.timeout:g}s", retryable=True
            ) from error
        except aiohttp.ClientError as error:
            raise DeliveryError(
                "connection", str(error) or type(error).__name__, retryable=True
            ) from error


def _raise_for(status: int, retry_after: str | None, now: float) -> None:
    if 200 <= status < 300:
        return
    retryable = status >= 500 or status in _RETRYABLE_STATUS
    raise DeliveryError(
        f"http_{status}",
        f"the receiver answered {status}",
        retryable=retryable,
        retry_after=parse_retry_after(retry_after, now) if retryable else None,
    )


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds, or an HTTP date relative to `now`."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # delta-seconds is ASCII digits; '²'.isdigit() too
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - now) if now is not None else None
