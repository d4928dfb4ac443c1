"""The log receiver: one structured log line per alert, with the notification's context."""

from __future__ import annotations

from structlog.testing import capture_logs

from anomalyd.alert import firing
from anomalyd.notify import LogNotifier
from anomalyd.notify.notification import Notification


async def test_one_line_per_alert() -> None:
    alerts = tuple(
        firing({"alertname": "High", "stream": s}, {"summary": f"{s} high"}, 1.0, "http://x")
        for s in ("cpu", "mem")
    )
    notification = Notification("console", '{}:{alertname="High"}', {}, alerts, "n-7")
    with capture_logs() as logs:
        await LogNotifier("console").send(notification)
    assert [(line["event"], line["stream"], line["summary"]) for line in logs] == [
        ("alert", "cpu", "cpu high"),
        ("alert", "mem", "mem high"),
    ]
    assert {line["notification_id"] for line in logs} == {"n-7"}
    assert logs[0]["group_key"] == '{}:{alertname="High"}'
    assert logs[0]["alert"] == alerts[0].to_json()
