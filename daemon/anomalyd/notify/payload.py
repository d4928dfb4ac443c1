"""Alertmanager's webhook payload, version 4, so existing webhook consumers work unchanged."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from anomalyd.domain import AlertStatus
from anomalyd.notify.notification import Notification


def notification_payload(
    notification: Notification, external_url: str, max_alerts: int = 0
) -> dict[str, Any]:
    """The v4 body for one notification. With `max_alerts`, only the first alerts are
    listed and `truncatedAlerts` counts the rest; common labels and the status still
    cover every alert, as in Alertmanager."""
    alerts = notification.alerts
    if not alerts:
        raise ValueError("a notification carries at least one alert")
    listed = alerts[:max_alerts] if max_alerts > 0 else alerts
    firing = any(alert.status is AlertStatus.FIRING for alert in alerts)
    return {
        "version": "4",
        "groupKey": notification.group_key,
        "truncatedAlerts": len(alerts) - len(listed),
        "status": AlertStatus.FIRING.value if firing else AlertStatus.RESOLVED.value,
        "receiver": notification.receiver,
        "groupLabels": dict(notification.group_labels),
        "commonLabels": _common([alert.labels for alert in alerts]),
        "commonAnnotations": _common([alert.annotations for alert in alerts]),
        "externalURL": external_url,
        "alerts": [alert.to_json() for alert in listed],
    }


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    first, *rest = maps
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in rest)}
