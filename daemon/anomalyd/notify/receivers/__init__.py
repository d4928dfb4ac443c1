"""Receivers: one notifier per receiver type, each delivering a Notification or
raising DeliveryError (retryable or not)."""

from __future__ import annotations

import aiohttp

from anomalyd.clock import Clock
from anomalyd.config import (
    AlertmanagerReceiver,
    AnomalydConfig,
    EmailReceiver,
    LogReceiver,
    Receiver,
    WebhookReceiver,
)
from anomalyd.notify.links import FeedbackLinks, LinkingNotifier
from anomalyd.notify.notification import Notifier
from anomalyd.notify.receivers._http import parse_retry_after
from anomalyd.notify.receivers.alertmanager import AlertmanagerNotifier, postable_alert
from anomalyd.notify.receivers.email import EmailNotifier
from anomalyd.notify.receivers.log import LogNotifier
from anomalyd.notify.receivers.signing import VerificationError, sign, verify
from anomalyd.notify.receivers.templates import EmailTemplates
from anomalyd.notify.receivers.webhook import WebhookNotifier

__all__ = [
    "AlertmanagerNotifier",
    "EmailNotifier",
    "EmailTemplates",
    "LogNotifier",
    "VerificationError",
    "WebhookNotifier",
    "build_notifier",
    "build_notifiers",
    "parse_retry_after",
    "postable_alert",
    "sign",
    "verify",
]


def build_notifiers(
    config: AnomalydConfig, session: aiohttp.ClientSession, clock: Clock
) -> list[Notifier]:
    """One notifier per configured receiver, in config order. With `http.feedback_secret`,
    receivers that reach people (all but `log`) get each alert with its feedback links."""
    links = FeedbackLinks.from_config(config)
    notifiers = []
    for receiver in config.receivers:
        notifier = build_notifier(receiver, config.app.external_url, session, clock)
        if links is not None and not isinstance(receiver, LogReceiver):
            notifier = LinkingNotifier(notifier, links, clock)
        notifiers.append(notifier)
    return notifiers


def build_notifier(
    receiver: Receiver, external_url: str, session: aiohttp.ClientSession, clock: Clock
) -> Notifier:
    match receiver:
        case WebhookReceiver():
            return WebhookNotifier(receiver, external_url, session, clock)
        case EmailReceiver():
            return EmailNotifier(receiver, external_url, clock)
        case AlertmanagerReceiver():
            return AlertmanagerNotifier(receiver, session, clock)
        case LogReceiver():
            return LogNotifier(receiver.name)
