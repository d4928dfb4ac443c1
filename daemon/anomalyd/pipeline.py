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

import orjson
import structlog

from anomalyd.config import AnomalydConfig, config_version
from anomalyd.config.drift import DriftSection
from anomalyd.decide import Engine
from anomalyd.decide.state_codec import FORMAT as ENGINE_FORMAT
from anomalyd.domain import Alert, AlertStatus, Event, Verdict
from anomalyd.drift import DriftMonitor, DriftUpdate, WindowRecord
from anomalyd.drift import state as drift_state

_log = structlog.get_logger(__name__)

#: The header of the drift part of a stream's snapshot (after the engine's line).
DRIFT_FORMAT = b"anomalyd-drift-1\n"
#: A snapshot with its drift part stays under this (Kafka's default message limit is 1 MB).
DRIFT_MAX_BYTES = 900_000


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
        self._oversized: set[str] = set()  # streams whose drift state was too large to save
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

    def snapshot(self, stream: str) -> bytes | None:
        """The stream's whole state, one snapshot: the engine's (one line of versioned
        JSON, `decide.state_codec`), then, if drift tracks the stream, a line with the
        drift monitor's (`drift.state`)."""
        blob = self.engine.snapshot(stream)
        drift = self.drift
        state = drift.state(stream) if drift is not None and blob is not None else None
        if blob is None or drift is None or state is None:
            return blob
        part = orjson.dumps(drift_state.encode(state, drift.config))
        if len(blob) + len(part) > DRIFT_MAX_BYTES:
            # Many fields with large windows: the record would pass Kafka's default
            # message limit. The engine's state is saved; drift relearns after a restart.
            if stream not in self._oversized:
                self._oversized.add(stream)
                _log.warning("drift_state_not_saved", stream=stream[:200], bytes=len(part))
            return blob
        return blob + b"\n" + DRIFT_FORMAT + part

    def refusal(self, stream: str, blob: bytes) -> str | None:
        """Resume a stream from `snapshot`: None once done, else why the engine refused
        it (nothing changes then). A drift part that cannot be read leaves the stream's
        drift to start afresh, and says so in the log."""
        engine_blob, drift_blob = _split(blob)
        reason = self.engine.refusal(stream, engine_blob)
        if reason is None and drift_blob is not None and self.drift is not None:
            self._restore_drift(self.drift, stream, drift_blob)
        return reason

    def _restore_drift(self, drift: DriftMonitor, stream: str, blob: bytes) -> None:
        try:
            if not blob.startswith(DRIFT_FORMAT):
                raise ValueError("not a drift state of this version")
            state = drift_state.decode(orjson.loads(blob[len(DRIFT_FORMAT) :]), drift.config)
        except (ValueError, TypeError, LookupError) as error:  # StateError is a ValueError
            # Whatever the blob holds, the stream goes on: its drift learns again.
            _log.warning("drift_state_refused", stream=stream[:200], reason=str(error)[:200])
            return
        if state is None:
            _log.info(
                "drift_state_reset", stream=stream[:200], reason="window or reference changed"
            )
            return
        drift.restore(stream, state)

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


def _split(blob: bytes) -> tuple[bytes, bytes | None]:
    """The engine's part of a snapshot and the drift part, if any (a snapshot written
    before drift state was kept has none)."""
    if not blob.startswith(ENGINE_FORMAT):
        return blob, None
    end = blob.find(b"\n", len(ENGINE_FORMAT))
    if end < 0:
        return blob, None
    return blob[:end], blob[end + 1 :]
