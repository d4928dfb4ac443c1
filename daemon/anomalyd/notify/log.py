"""The log receiver: each alert as one JSON log line, for consoles and log pipelines."""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from anomalyd.domain import Alert

_log = structlog.get_logger("anomalyd.alerts")


class LogNotifier:
    def __init__(self, name: str) -> None:
        self.name = name

    async def send(self, alerts: Sequence[Alert]) -> None:
        for alert in alerts:
            _log.info(
                "alert",
                receiver=self.name,
                status=alert.status.value,
                alertname=alert.labels.get("alertname"),
                stream=alert.labels.get("stream"),
                summary=alert.annotations.get("summary"),
                alert=alert.to_json(),
            )
