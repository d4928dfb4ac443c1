"""The daemon's Prometheus metrics, in a registry of their own (one per app, so a
test process can build several apps without duplicate-series errors)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events = Counter("anomalyd_events", "Events received, valid or not.", registry=r)
        self.invalid_events = Counter(
            "anomalyd_invalid_events",
            "Events rejected to the dead-letter topic.",
            ["reason"],
            registry=r,
        )
        self.alerts = Counter(
            "anomalyd_alerts", "Alert state changes emitted.", ["status", "detector"], registry=r
        )
        self.deliveries = Counter(
            "anomalyd_deliveries",
            "Delivery attempts by receiver and outcome (ok, or the failure reason).",
            ["receiver", "outcome"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "anomalyd_notifications_dead_lettered",
            "Notifications given up on and sent to the alerts dead-letter topic.",
            ["receiver"],
            registry=r,
        )
        self.delivery_seconds = Histogram(
            "anomalyd_delivery_seconds",
            "Time from the first delivery attempt to success, retries included.",
            ["receiver"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.notifications = Counter(
            "anomalyd_notifications",
            "Notifications decided by dedup, by receiver and reason (first_notification, "
            "new_alerts, some_resolved, all_resolved, repeat_interval).",
            ["receiver", "reason"],
            registry=r,
        )
        self.queued_alerts = Gauge(
            "anomalyd_notify_queued_alerts",
            "Alerts held in notification groups by receiver: waiting for group_wait or "
            "group_interval, or firing and awaiting their resolution.",
            ["receiver"],
            registry=r,
        )
        self.groups = Gauge(
            "anomalyd_notify_groups", "Notification groups by receiver.", ["receiver"], registry=r
        )
        self.event_latency = Histogram(
            "anomalyd_event_latency_seconds",
            "Time from the event's broker timestamp to its verdict.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.drift_windows = Counter(
            "anomalyd_drift_windows",
            "Drift windows closed, by the stream's drift status after the window.",
            ["status"],
            registry=r,
        )
        self.drifting_streams = Gauge(
            "anomalyd_drifting_streams", "Streams inside a confirmed drift episode.", registry=r
        )
        self.streams = Gauge("anomalyd_streams", "Streams with state on this worker.", registry=r)
        self.ready = Gauge(
            "anomalyd_ready", "1 when the worker consumes its partitions.", registry=r
        )
