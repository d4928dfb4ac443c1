"""The daemon's Prometheus metrics, in a registry of their own (one per app, so a
test process can build several apps without duplicate-series errors)."""

from __future__ import annotations

import platform
from bisect import bisect_left
from collections.abc import Iterable, Iterator

from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

from anomalyd import __version__
from anomalyd.domain import FeedbackLabel
from anomalyd.drift.episode import Status as DriftStatus
from anomalyd.drift.rule import WindowJudgement
from anomalyd.ingest.parse import INVALID_EVENT_CODES

#: Values of `anomalyd_event_errors_total{reason}` (see its help).
EVENT_ERROR_REASONS = (
    "judge_error",
    "invalid_internal",
    "unforwardable",
    "dead_letter_truncated",
    "dead_letter_failed",
    "dead_letter_lost",
)
#: Delivery outcomes every receiver can have; others (http_503, smtp_421) appear when seen.
DELIVERY_OUTCOMES = ("ok", "timeout", "connection")
#: Why dedup lets a notification out (`notify.dedup.Reason`, which imports this module).
NOTIFICATION_REASONS = (
    "first_notification",
    "new_alerts",
    "some_resolved",
    "all_resolved",
    "repeat_interval",
)
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
        self.event_errors = Counter(
            "anomalyd_event_errors",
            "Records the worker could not judge or send as they are, by reason: judge_error "
            "(judging raised), invalid_internal (an invalid event on the by-stream topic), "
            "unforwardable (the re-key send failed), dead_letter_truncated (dead-lettered "
            "cut to fit a request), dead_letter_failed (dead-lettered as coordinates only), "
            "dead_letter_lost (not even those could be sent; logged). Each is dead-lettered "
            "or logged, and the worker goes on.",
            ["reason"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            "anomalyd_consumer_lag",
            "Records of an assigned event partition not judged yet (log end offset minus "
            "the next offset to judge), as of the last batch read from it.",
            ["topic", "partition"],
            registry=r,
        )
        self.rekeyed = Counter(
            "anomalyd_events_rekeyed",
            "Valid events that took the re-key hop through the by-stream topic, by why: "
            "their key is not the stream name (key), they sit in another partition than "
            "the stream's (partition), or the events topic is partitioned unlike the "
            "internal topics (topic). Events keyed by stream with Kafka's default "
            "partitioner skip the hop.",
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
        self.alerts_taken = Counter(
            "anomalyd_notify_alerts_taken",
            "Alerts taken into notification groups, by how: on the acknowledgement of this "
            "worker's own write to the alerts topic (write), or read from it (read).",
            ["via"],
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
        self.notifications_muted = Counter(
            "anomalyd_notifications_muted",
            "Firing alerts taken out of a notification at flush time, by reason (silenced, "
            "inhibited): one per alert and flush.",
            ["reason"],
            registry=r,
        )
        for reason in ("silenced", "inhibited"):  # exported at 0 before the first mute
            self.notifications_muted.labels(reason)
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
        self.event_latency = HotHistogram(
            "anomalyd_event_latency_seconds",
            "Time from the event's broker timestamp to its verdict.",
            _LATENCY_BUCKETS,
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
        self.drift_judgements = Counter(
            "anomalyd_drift_field_windows",
            "Closed drift windows per field, by judgement (shifted, unchanged, "
            "too_few_events, no_reference, learning, leaning).",
            ["judgement"],
            registry=r,
        )
        self.drift_sparse_streams = Gauge(
            "anomalyd_drift_sparse_streams",
            "Streams whose largest drift window is expected to hold fewer than min_count events.",
            registry=r,
        )
        self.feedback = Counter(
            "anomalyd_feedback",
            "Feedback labels applied (once each), by the alert's detector and the label.",
            ["detector", "label"],
            registry=r,
        )
        self.feedback_precision = Gauge(
            "anomalyd_feedback_precision",
            "Precision from feedback, Beta(1, 1) prior, over the labels remembered for the "
            "streams on this worker, by detector.",
            ["detector"],
            registry=r,
        )
        self.threshold_adaptations = Counter(
            "anomalyd_threshold_adaptations",
            "Moves of a stream's model threshold by feedback, by direction (up, down).",
            ["direction"],
            registry=r,
        )
        self.streams = Gauge("anomalyd_streams", "Streams with state on this worker.", registry=r)
        self.streams_evicted = Counter(
            "anomalyd_streams_evicted",
            "Streams whose state was dropped to stay within ingest.max_streams (the least "
            "recently seen one without a firing alert); such a stream starts afresh.",
            registry=r,
        )
        self.ready = Gauge(
            "anomalyd_ready", "1 when the worker consumes its partitions.", registry=r
        )
        self.config_reloads = Counter(
            "anomalyd_config_reloads",
            "Config reloads by outcome: ok, rejected (invalid; the running config stays), "
            "restart_needed (applied but for keys that need a restart).",
            ["outcome"],
            registry=r,
        )
        for outcome in ("ok", "rejected", "restart_needed"):  # 0 from the start, for rate()
            self.config_reloads.labels(outcome)
        self.build_info = Gauge(
            "anomalyd_build_info",
            "1, labelled with the anomalyd version and the Python that runs it.",
            ["version", "python_version", "python_implementation"],
            registry=r,
        )
        self.build_info.labels(
            __version__, platform.python_version(), platform.python_implementation()
        ).set(1)
        self._process_collectors(r)
        self._zero_known_labels()
        self.config_version = Gauge(
            "anomalyd_config_version_info",
            "1 for the version of the config in force (see set_config_version).",
            ["version"],
            registry=r,
        )

    @staticmethod
    def _process_collectors(registry: CollectorRegistry) -> None:
        """process_* (memory, CPU, file descriptors), python_info and python_gc_*, as
        every Prometheus client exports them by default (our registry is not the default)."""
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        # GCCollector is a no-op on Pythons without gc.get_stats; the default registry
        # holds one already, which is where GC_COLLECTOR comes from.
        if GC_COLLECTOR is not None:
            GCCollector(registry=registry)

    def _zero_known_labels(self) -> None:
        """Every series whose label values are known in advance, at 0 from the start:
        `increase()` and `rate()` see the first event only if a 0 came before it."""
        for code in INVALID_EVENT_CODES:
            self.invalid_events.labels(code)
        for reason in EVENT_ERROR_REASONS:
            self.event_errors.labels(reason)
        for reason in ("key", "partition", "topic"):
            self.rekeyed.labels(reason)
        for status in ("firing", "resolved"):
            for detector in ("rules", "model", "drift"):
                self.alerts.labels(status, detector)
        for via in ("write", "read"):
            self.alerts_taken.labels(via)
        for drift_status in DriftStatus:
            self.drift_windows.labels(drift_status.value)
        for judgement in WindowJudgement:
            self.drift_judgements.labels(judgement.value)
        for detector in ("rules", "model"):
            for label in FeedbackLabel:
                self.feedback.labels(detector, label.value)
        for direction in ("up", "down"):
            self.threshold_adaptations.labels(direction)

    def know_receivers(self, names: Iterable[str]) -> None:
        """The configured receivers' series at 0 (a receiver added by a reload too):
        the first dead letter or failed delivery then shows in `increase()`."""
        for name in names:
            self.dead_lettered.labels(name)
            self.delivery_seconds.labels(name)
            for outcome in DELIVERY_OUTCOMES:
                self.deliveries.labels(name, outcome)
            for reason in NOTIFICATION_REASONS:
                self.notifications.labels(name, reason)

    def set_config_version(self, version: str) -> None:
        """The config in force is now `version`: one series, the old one gone."""
        self.config_version.clear()
        self.config_version.labels(version).set(1)


class HotHistogram(Collector):
    """A histogram observed once per event, on the hot path: plain counts, exported at
    scrape time. prometheus_client's `Histogram.observe` takes a lock and walks every
    bucket: ~3 µs, a tenth of what judging an event costs. Observed and scraped on the
    event loop's thread only."""

    def __init__(
        self, name: str, documentation: str, buckets: tuple[float, ...], registry: CollectorRegistry
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._bounds = buckets
        self._counts = [0] * (len(buckets) + 1)  # the last one past every bound (+Inf)
        self._sum = 0.0
        registry.register(self)

    def observe(self, value: float) -> None:
        self._counts[bisect_left(self._bounds, value)] += 1  # le: value <= bound
        self._sum += value

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self._name, self._documentation)
        cumulative, buckets = 0, []
        for bound, count in zip((*map(str, self._bounds), "+Inf"), self._counts, strict=True):
            cumulative += count
            buckets.append((bound, float(cumulative)))
        family.add_metric([], buckets, sum_value=self._sum)
        yield family
