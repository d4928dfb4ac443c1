"""One notification: what a receiver is asked to deliver for one alert group, and the
contract every receiver implements."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from anomalyd.domain import Alert


@dataclass(frozen=True, slots=True)
class Notification:
    """The alerts of one group for one receiver, with the group's context.

    `group_key` is Alertmanager's (`{}/{severity="critical"}:{alertname="X"}`: the
    route path, then the group labels). `notification_id` is stable for the same
    receiver, group and alert set (`notify.dedup.notification_id`), so a receiver
    can use it as an idempotency key (the Standard Webhooks `webhook-id`).
    """

    receiver: str
    group_key: str
    group_labels: Mapping[str, str]
    alerts: tuple[Alert, ...]
    notification_id: str


class Notifier(Protocol):
    """A receiver: delivers a notification, or raises `notify.retry.DeliveryError`
    saying whether trying again can help. Only the retry stage retries."""

    name: str

    async def send(self, notification: Notification) -> None: ...
