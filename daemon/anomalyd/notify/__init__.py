"""Notification: get alerts to people, or dead-letter them with the reason.

The pipeline, as in Alertmanager: dispatch (route, group) -> mute(inhibit) ->
mute(silence) -> dedup -> retry(deliver) -> record; `builder.build_notify` assembles it
from the config, and nothing else does.
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
