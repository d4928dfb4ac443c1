"""What the worker does with each event, minus Kafka: decode, judge, emit alerts.
The Faust app (`worker/app.py`) only moves messages in and out of this."""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import orjson
import structlog

from anomalyd.clock import Clock
from anomalyd.config import AnomalydConfig
from anomalyd.decide.reconcile import model_shape
from anomalyd.domain import Alert, Event
from anomalyd.drift import restarts_streams
from anomalyd.ingest import InvalidEvent, Limits, parse_event
from anomalyd.metrics import Metrics
from anomalyd.pipeline import Outcome, Pipeline
from anomalyd.worker.detection.alert_index import AlertIndex
from anomalyd.worker.detection.feedback_topic import publish_precision
from anomalyd.worker.kafka.records import Sender

_log = structlog.get_logger(__name__)

#: Rejections logged one by one per reason before the log is sampled (`_RejectionLog`).
REJECTIONS_LOGGED = 10
#: Seconds between two sampled lines of one reason, each with the count it stands for.
REJECTION_LOG_INTERVAL = 60.0
#: Least recently seen streams looked at for one eviction (firing ones are skipped).
_EVICTION_SCAN = 64


@dataclass(frozen=True, slots=True)
class Rejected:
    code: str
    detail: str


class ReconfigureFailed(Exception):
    """Detection could not adopt a config, and went back to the one it ran."""


class Runtime:
    """Owns the detection pipeline (engine and drift monitor) of one worker."""

    def __init__(self, config: AnomalydConfig, clock: Clock, metrics: Metrics) -> None:
        self.config = config
        self.clock = clock
        self.metrics = metrics
        self.pipeline = Pipeline(config)
        self.engine = self.pipeline.engine
        self.limits = _limits(config)
        self.metrics.set_config_version(self.pipeline.version)
        #: Assigned partitions' state restored (set and cleared around rebalances).
        self.ready = False
        #: The broker answered the last probes (`kafka/health.py`).
        self.broker_reachable = True
        #: The type of error the worker crashed with, once it has: /healthz fails from
        #: then on (the type only: the message may quote an event).
        self.crashed_with: str | None = None
        #: The most recent closed drift windows of all streams, for /api/drift?stream=NAME
        #: (bounded: the full history is on the drift topic).
        self.drift_history: deque[dict[str, object]] = deque(maxlen=2000)
        #: stream -> partition, the least recently seen first (`_seen`).
        self._stream_partitions: OrderedDict[str, int] = OrderedDict()
        #: Called with (stream, partition) when a stream is evicted (`ingest.max_streams`).
        self.on_evict: Callable[[str, int], object] | None = None
        self._rejections = _RejectionLog(clock)
        #: What this worker emitted, for /api/alerts and feedback.
        self.alerts = AlertIndex()

    async def reconfigure(self, config: AnomalydConfig) -> None:
        """Adopt a reloaded config's detection sections and ingest limits, keeping what
        the streams learned (`Pipeline.reconfigure`); publish the alerts it resolves.

        All or nothing: if the pipeline cannot adopt the config, it goes back to the
        running one and ReconfigureFailed says why (if it cannot go back either, that
        error propagates: the state is unknown)."""
        before, now = self.config, self.clock.now()
        try:
            ended = self.pipeline.reconfigure(config, now=now)
        except Exception as error:  # rolled back below, then reported as a rejection
            _log.exception("detection_reconfigure_failed", detail="restoring the running config")
            ended = self.pipeline.reconfigure(before, now=now)
            await self.publish(Outcome(alerts=ended))
            raise ReconfigureFailed(f"{type(error).__name__}: {error}") from error
        self.config = config
        _log_rebuilds(before, config, self.engine.stream_count)
        self.limits = _limits(config)
        self.metrics.set_config_version(self.pipeline.version)
        await self.publish(Outcome(alerts=ended))

    @property
    def serving(self) -> bool:
        """Ready to judge events: state restored and the broker reachable (`/readyz`)."""
        return self.ready and self.broker_reachable and self.crashed_with is None

    def set_crashed(self, reason: BaseException) -> None:
        """A service crashed: the worker is not alive any more (it is exiting)."""
        self.crashed_with = type(reason).__name__
        self.metrics.ready.set(0)

    def set_ready(self, ready: bool) -> None:
        self.ready = ready
        self.metrics.ready.set(int(self.serving))

    def set_broker_reachable(self, reachable: bool) -> None:
        self.broker_reachable = reachable
        self.metrics.ready.set(int(self.serving))

    def refresh_gauges(self) -> None:
        """The gauges read when /metrics is scraped: streams, precision, drifting streams."""
        self.metrics.streams.set(self.engine.stream_count)
        publish_precision(self.engine, self.metrics)
        monitor = self.pipeline.drift
        if monitor is not None:
            self.metrics.drifting_streams.set(sum(map(monitor.is_drifting, monitor.streams())))

    def log_ready(self) -> None:
        _log.info("worker_ready", streams=self.engine.stream_count)

    def attach(self, *, send_alert: Sender, send_drift: Sender) -> None:
        """Connect the outputs (the app's alerts and drift topics) once they exist."""
        self._send_alert = send_alert
        self._send_drift = send_drift

    # -- ingest, detect and decide ---------------------------------------------

    def decode(
        self, raw: bytes | None, broker_ts: float | None, now: float | None = None
    ) -> Event | Rejected:
        """The event, or why not (counted, and logged sampled: `_RejectionLog`). With
        `now`, events beyond `ingest.max_future_skew` ahead of it are rejected."""
        try:
            return parse_event(
                raw if raw is not None else b"", self.limits, default_ts=broker_ts, now=now
            )
        except InvalidEvent as invalid:
            self.metrics.invalid_events.labels(invalid.code).inc()
            self._rejections.log(invalid.code, invalid.detail)
            return Rejected(invalid.code, invalid.detail)

    def score(
        self, event: Event, partition: int, broker_ts: float | None, now: float, into: Outcome
    ) -> None:
        """Judge one event (no I/O); what it changes goes into `into`, published by the
        caller once per batch."""
        self._seen(event.stream, partition)
        outcome = self.pipeline.process(event, now=now)
        if broker_ts is not None:
            self.metrics.event_latency.observe(max(0.0, now - broker_ts))
        if outcome.alerts:
            into.alerts.extend(outcome.alerts)
        if outcome.drift:
            into.drift.extend(outcome.drift)

    async def tick(self) -> None:
        """On a timer: absence alerts, and drift windows of streams that went quiet."""
        await self.publish(self.pipeline.tick(self.clock.now()))

    async def publish(self, outcome: Outcome) -> None:
        """Send an outcome's alerts and closed drift windows to their topics."""
        for alert in outcome.alerts:
            await self.emit(alert)
        for record in outcome.drift:
            body = record.to_json()
            self.drift_history.append(body)
            self.metrics.drift_windows.labels(str(body.get("status", ""))).inc()
            await self._send_drift(record.stream.encode(), orjson.dumps(body), [])

    async def emit(self, alert: Alert) -> None:
        """Write an alert state change to the alerts topic (the durable outbox), keyed by
        alertname: every alert of a notification group whose group_by includes alertname
        (the default, and Alertmanager's usual practice) lands in one partition, so one
        worker holds the whole group; one alert's changes stay in order."""
        detector = alert.labels.get("detector", "")
        self.metrics.alerts.labels(alert.status.value, detector).inc()
        _log.info(
            f"alert_{alert.status.value}",
            fingerprint=alert.fingerprint,
            alertname=alert.labels.get("alertname"),
            stream=alert.labels.get("stream"),
            summary=alert.annotations.get("summary"),
        )
        key = alert.labels.get("alertname", alert.fingerprint).encode()
        await self._send_alert(key, orjson.dumps(alert.to_json()), [])
        self.alerts.add(alert)

    def _seen(self, stream: str, partition: int) -> None:
        """Keep streams in the order they were last seen; a new stream past
        `ingest.max_streams` evicts the least recently seen one."""
        parts = self._stream_partitions
        if stream in parts:
            parts.move_to_end(stream)
        elif len(parts) >= self.config.ingest.max_streams:
            self._evict_one()
        parts[stream] = partition

    def _evict_one(self) -> None:
        """Drop the least recently seen stream without a firing alert (one that fires is
        kept, or its alert would never resolve). Its snapshot goes too (`on_evict`): it
        starts afresh if it comes back."""
        parts = self._stream_partitions
        for _ in range(min(_EVICTION_SCAN, len(parts))):
            stream, partition = parts.popitem(last=False)
            if self.alerts.firing_in(stream):
                parts[stream] = partition  # firing: kept, as if just seen
                continue
            self.pipeline.forget([stream])
            self.metrics.streams_evicted.inc()
            if self.on_evict is not None:
                self.on_evict(stream, partition)
            return
        _log.warning("stream_eviction_skipped", reason="the oldest streams all have firing alerts")

    def partition_of(self, stream: str) -> int | None:
        """The by-stream partition this worker judges the stream from, if it does."""
        return self._stream_partitions.get(stream)

    def streams_in(self, partitions: Iterable[int]) -> list[str]:
        wanted = set(partitions)
        return [stream for stream, p in self._stream_partitions.items() if p in wanted]

    def forget_partitions(self, partitions: Iterable[int]) -> None:
        """After a rebalance took partitions away, drop the state of their streams."""
        gone = self.streams_in(partitions)
        self.pipeline.forget(gone)
        self.alerts.forget(set(gone))
        for stream in gone:
            del self._stream_partitions[stream]
        self.metrics.streams.set(self.engine.stream_count)


class _RejectionLog:
    """Invalid events logged without flooding: the first `REJECTIONS_LOGGED` of each
    reason one by one, then one line per reason every `REJECTION_LOG_INTERVAL` seconds
    with how many it stands for. The metric counts every one."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._seen: Counter[str] = Counter()
        self._unlogged: Counter[str] = Counter()
        self._next_line: dict[str, float] = {}

    def log(self, reason: str, detail: str) -> None:
        self._seen[reason] += 1
        if self._seen[reason] <= REJECTIONS_LOGGED:
            _log.warning("event_rejected", reason=reason, detail=detail)
            return
        self._unlogged[reason] += 1
        now = self._clock.now()
        if now < self._next_line.get(reason, 0.0):
            return
        self._next_line[reason] = now + REJECTION_LOG_INTERVAL
        _log.warning(
            "event_rejected",
            reason=reason,
            detail=detail,
            sampled=True,
            count=self._unlogged.pop(reason),
            interval_s=REJECTION_LOG_INTERVAL,
        )


def _limits(config: AnomalydConfig) -> Limits:
    ingest = config.ingest
    return Limits(
        max_event_bytes=ingest.max_event_bytes,
        max_labels=ingest.max_labels,
        max_fields=ingest.max_fields,
        max_future_skew=ingest.max_future_skew,
    )


def _log_rebuilds(before: AnomalydConfig, after: AnomalydConfig, streams: int) -> None:
    """Say so when a reload costs learned state: models relearn, drift windows restart."""
    if model_shape(before.model) != model_shape(after.model):
        _log.warning(
            "models_rebuilt",
            streams=streams,
            detector=after.model.detector,
            window=after.model.window,
            seasonality=after.model.seasonality,
            detail="detector, window or seasonality changed: every model relearns and warms up",
        )
    old, new = before.drift, after.drift
    if old.enabled and (not new.enabled or restarts_streams(old, new)):
        _log.warning(
            "drift_state_reset",
            enabled=new.enabled,
            detail="window, reference or change_detector changed: drift windows start afresh",
        )
