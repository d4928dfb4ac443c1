"""Notification: get alerts to people, or dead-letter them with the reason.

The pipeline, as in Alertmanager: dispatch (route, group) -> inhibit -> silence -> dedup
-> retry(deliver) -> record; `dispatch.build_pipeline` composes it.
"""

from anomalyd.notify.dedup import notification_id
from anomalyd.notify.dispatch import Dispatcher
from anomalyd.notify.notification import Notification, Notifier
from anomalyd.notify.payload import notification_payload
from anomalyd.notify.receivers import (
    AlertmanagerNotifier,
    EmailNotifier,
    LogNotifier,
    WebhookNotifier,
    build_notifiers,
    parse_retry_after,
)
from anomalyd.notify.retry import DeadLetter, DeliveryError, RetryPolicy

__all__ = [
    "AlertmanagerNotifier",
    "DeadLetter",
    "DeliveryError",
    "Dispatcher",
    "EmailNotifier",
    "LogNotifier",
    "Notification",
    "Notifier",
    "RetryPolicy",
    "WebhookNotifier",
    "build_notifiers",
    "notification_id",
    "notification_payload",
    "parse_retry_after",
]
