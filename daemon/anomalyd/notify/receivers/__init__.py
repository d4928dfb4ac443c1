"""Receivers: one notifier per receiver type, each delivering a Notification or
raising DeliveryError (retryable or not)."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from typing import cast

import aiohttp
from jinja2 import TemplateError

from anomalyd.clock import Clock, SystemClock
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
from anomalyd.notify.receivers.templates import EmailTemplates, template_problems
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
    "indexed_receiver_problems",
    "parse_retry_after",
    "postable_alert",
    "receiver_problems",
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


#: The notifiers keep the HTTP session for sending only; a check builds them and never
#: sends, so it needs no open session (one would need a running event loop).
_NO_SESSION = cast(aiohttp.ClientSession, None)


def receiver_problems(config: AnomalydConfig) -> list[str]:
    """What the schema cannot see and the worker would meet only when it builds or uses a
    receiver: certificate files that do not load, templates that do not compile or fail
    on an alert. Each receiver is built exactly as the worker builds it (`build_notifier`);
    each problem is `receivers[i].key: why`."""
    return indexed_receiver_problems(list(enumerate(config.receivers)), config.app.external_url)


def indexed_receiver_problems(
    receivers: Sequence[tuple[int, Receiver]], external_url: str
) -> list[str]:
    """`receiver_problems` of (index in the file, receiver) pairs: the receivers that
    passed the schema of a file that may still have other problems."""
    problems: list[str] = []
    for i, receiver in receivers:
        where = f"receivers[{i}]"
        if isinstance(receiver, EmailReceiver):
            sources = {"subject": receiver.subject, "text": receiver.text, "html": receiver.html}
            found = template_problems(sources, external_url)
            problems.extend(f"{where}.{part}: {text}" for part, text in found.items())
            if found:
                continue  # building it would only fail on the same templates
        problems.extend(_build_problems(receiver, where, external_url))
    return problems


def _build_problems(receiver: Receiver, where: str, external_url: str) -> list[str]:
    try:
        build_notifier(receiver, external_url, _NO_SESSION, SystemClock())
    except ssl.SSLError as error:  # before OSError: SSLError is one
        return [f"{where}.ca_file: not PEM certificates ({error.reason or error})"]
    except OSError as error:  # only the email receiver opens a file: its ca_file
        return [f"{where}.ca_file: cannot be read ({error.strerror or error})"]
    except (TemplateError, ValueError) as error:
        return [f"{where}: cannot be built ({type(error).__name__}: {error})"]
    return []
