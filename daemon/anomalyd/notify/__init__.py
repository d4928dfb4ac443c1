"""Notification: get alerts to people, or dead-letter them with the reason."""

from anomalyd.notify.dispatch import DeadLetter, Dispatcher, Notifier
from anomalyd.notify.log import LogNotifier
from anomalyd.notify.payload import webhook_payload
from anomalyd.notify.retry import DeliveryError, RetryPolicy
from anomalyd.notify.webhook import WebhookNotifier, parse_retry_after

__all__ = [
    "DeadLetter",
    "DeliveryError",
    "Dispatcher",
    "LogNotifier",
    "Notifier",
    "RetryPolicy",
    "WebhookNotifier",
    "parse_retry_after",
    "webhook_payload",
]
