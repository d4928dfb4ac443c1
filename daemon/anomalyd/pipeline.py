"""The detection pipeline without I/O: the engine (rules and model) and the drift monitor.

The one code path that scores events: the worker feeds it from Kafka, `backtest`
from a file. Time comes in as arguments: event time for decisions, `now` (arrival)
for absence and for closing the windows of silent streams.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from anomalyd.config import AnomalydConfig
from anomalyd.decide import Engine
from anomalyd.domain import Alert, AlertStatus, Event, Verdict
from anomalyd.drift import DriftMonitor, DriftUpdate, WindowRecord


@dataclass(slots=True)
class Outcome:
    verdicts: list[Verdict] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    drift: list[WindowRecord] = field(default_factory=list)

    def add_drift(self, update: DriftUpdate) -> None:
        self.drift.extend(update.records)
        self.alerts.extend(update.alerts)


class Pipeline:
    def __init__(self, config: AnomalydConfig) -> None:
        drift = config.drift
        self.drift = DriftMonitor(drift, config.app.external_url) if drift.enabled else None
        self.engine = self._engine(config)

    def process(self, event: Event, now: float) -> Outcome:
        judgement = self.engine.process(event, now)
        outcome = Outcome(judgement.verdicts, judgement.alerts)
        if self.drift is not None:
            self.drift.observe(event, now, {v.field: v.model_score for v in judgement.verdicts})
            for alert in judgement.alerts:
                if alert.status is AlertStatus.FIRING:
                    self.drift.record_alert(event.stream, event.ts, now)
            outcome.add_drift(self.drift.close_due(event.ts, event.stream))
        return outcome

    def tick(self, now: float) -> Outcome:
        """On a timer: absence, and the drift windows of streams that went quiet."""
        outcome = Outcome(alerts=self.engine.check_absence(now))
        if self.drift is not None:
            outcome.add_drift(self.drift.close_idle(now))
        return outcome

    def finish(self) -> Outcome:
        """End of input (backtest): close every open drift window."""
        outcome = Outcome()
        if self.drift is not None:
            outcome.add_drift(self.drift.flush())
        return outcome

    def forget(self, streams: Iterable[str]) -> None:
        gone = list(streams)
        self.engine.forget(gone)
        if self.drift is not None:
            self.drift.forget(gone)

    def _engine(self, config: AnomalydConfig) -> Engine:
        drift = self.drift
        if drift is None:
            return Engine(config.rules, config.model, config.app.external_url)

        def status(stream: str) -> str | None:
            current = drift.status(stream)
            return None if current is None else current.value

        fallback = config.drift.fallback_to_rules
        return Engine(
            config.rules,
            config.model,
            config.app.external_url,
            drift_status=status,
            untrusted=drift.is_drifting if fallback else (lambda stream: False),
        )
