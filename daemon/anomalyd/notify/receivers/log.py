"""The log receiver: each alert as one JSON log line, for consoles and log pipelines."""

from __future__ import annotations

import structlog

from anomalyd.notify.notification import Notification

_log = structlog.get_logger("anomalyd.alerts")


class LogNotifier:
    def __init__(self, name: str) -> None:
        self.name = name

    async def send(self, notification: Notification) -> None:
        for alert in notification.alerts:
            _log.info(
                "alert",
                receiver=self.name,
                group_key=notification.group_key,
                notification_id=notification.notification_id,
                status=alert.status.value,
                alertname=alert.labels.get("alertname"),
                stream=alert.labels.get("stream"),
                summary=alert.annotations.get("summary"),
                alert=alert.to_json(),
            )
