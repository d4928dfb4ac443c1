"""The detection pipeline without I/O: the engine (rules and model) and the drift monitor.

The one code path that scores events: the worker feeds it from Kafka, `backtest`
from a file. Time comes in as arguments: event time for decisions, `now` (arrival)
for absence and for closing the windows of silent streams.

`reconfigure` adopts a new config without a restart: the engine keeps what unchanged
rules and models learned (`decide.reconcile`), the drift monitor keeps its windows
unless their shape changes (`DriftMonitor.reconfigure`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from anomalyd.config import AnomalydConfig, config_version
from anomalyd.config.drift import DriftSection
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
        #: The version of the config in force; every alert carries it.
        self.version = config_version(config)
        self._external_url = config.app.external_url
        self._fallback = config.drift.fallback_to_rules
        self.drift = self._monitor(config.drift) if config.drift.enabled else None
        self.engine = Engine(
            config.rules,
            config.model,
            config.app.external_url,
            drift_status=self._drift_status,
            untrusted=self._untrusted,
            config_version=self.version,
        )

    def reconfigure(self, config: AnomalydConfig, now: float) -> list[Alert]:
        """Adopt a new config (its detection sections); the alerts it resolves, ended at
        `now`. `config.app` is not re-read: alert links keep the URL they started with."""
        self.version = config_version(config)
        self._fallback = config.drift.fallback_to_rules
        ended = self._reconfigure_drift(config.drift, now)
        ended.extend(
            self.engine.reconfigure(
                config.rules, config.model, now=now, config_version=self.version
            )
        )
        return ended

    def process(self, event: Event, now: float) -> Outcome:
        judgement = self.engine.process(event, now)
        outcome = Outcome(judgement.verdicts, judgement.alerts)
        drift = self.drift
        if drift is not None:
            drift.observe(event, now, {v.field: v.model_score for v in judgement.verdicts})
            for alert in judgement.alerts:
                if alert.status is AlertStatus.FIRING:
                    drift.record_alert(event.stream, event.ts, now)
            closed = drift.close_due(event.ts, event.stream)
            if closed:
                outcome.add_drift(closed)
        return outcome

    def tick(self, now: float) -> Outcome:
        """On a timer: absence, and the drift windows of streams that went quiet."""
        outcome = Outcome(alerts=[*self.engine.take_orphans(now), *self.engine.check_absence(now)])
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

    def _reconfigure_drift(self, config: DriftSection, now: float) -> list[Alert]:
        if not config.enabled:
            drift, version = self.drift, self.version
            ended = drift.resolve_all(now, config_version=version) if drift is not None else []
            self.drift = None
            return ended
        if self.drift is None:
            self.drift = self._monitor(config)
            return []
        return self.drift.reconfigure(config, now=now, config_version=self.version)

    def _monitor(self, config: DriftSection) -> DriftMonitor:
        return DriftMonitor(config, self._external_url, config_version=self.version)

    # The engine asks through these, so they follow the monitor across reconfigurations.

    def _drift_status(self, stream: str) -> str | None:
        current = self.drift.status(stream) if self.drift is not None else None
        return None if current is None else current.value

    def _untrusted(self, stream: str) -> bool:
        return self._fallback and self.drift is not None and self.drift.is_drifting(stream)
