"""The detection engine: every rule that matches a stream judges each of its
points, and each judgement moves that alert's life cycle.

Plain Python with no I/O: the worker feeds it events from Kafka, `backtest`
feeds it events from a file, and both get the same alerts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from anomalyd.config import AbsenceRule, Rule, ValueRule
from anomalyd.decide import alerts
from anomalyd.decide.lifecycle import INACTIVE, AlertState, Phase, Timing, Transition, advance
from anomalyd.detect import Check, ValueCheck, value_check
from anomalyd.domain import VALUE_FIELD, Alert, Event

DETECTOR = "rules"


@dataclass(slots=True)
class _Series:
    """One (rule, field) of one stream: the rule's memory and its alert's state."""

    rule: ValueRule
    check: ValueCheck
    timing: Timing
    state: AlertState = INACTIVE
    alert: Alert | None = None  # the firing alert, kept to resolve it with the same identity


@dataclass(slots=True)
class _Absence:
    rule: AbsenceRule
    alert: Alert | None = None


@dataclass(slots=True)
class _Stream:
    series: list[_Series]
    absences: list[_Absence]
    last_seen: float
    labels: dict[str, str] = field(default_factory=dict)


class Engine:
    """Per-stream rule state and alert life cycles for the streams this worker owns."""

    def __init__(self, rules: Sequence[Rule], external_url: str) -> None:
        self._rules = list(rules)
        self._external_url = external_url
        self._streams: dict[str, _Stream] = {}

    @property
    def stream_count(self) -> int:
        return len(self._streams)

    def process(self, event: Event, now: float) -> list[Alert]:
        """Judge one event; return the alerts whose state changed (fired or resolved).

        `now` is when the event arrived (for absence); decisions use event time.
        """
        stream = self._streams.get(event.stream)
        if stream is None:
            stream = self._streams[event.stream] = self._new_stream(event.stream, now)
        stream.last_seen = now
        stream.labels = dict(event.labels)
        changed = [a for a in (_end_absence(ab, now) for ab in stream.absences) if a is not None]
        for series in stream.series:
            value = event.values.get(_field(series.rule))
            if value is None:
                continue
            check = series.check.check(value, event.ts, series.state.phase is Phase.FIRING)
            if check is not None:
                alert = self._decide(event, series, check)
                if alert is not None:
                    changed.append(alert)
        return changed

    def check_absence(self, now: float) -> list[Alert]:
        """Fire an absence alert for every stream silent for longer than its rule allows."""
        fired = []
        for name, stream in self._streams.items():
            for absence in stream.absences:
                if absence.alert is None and now - stream.last_seen > absence.rule.for_:
                    absence.alert = self._absence_alert(name, stream, absence.rule)
                    fired.append(absence.alert)
        return fired

    def forget(self, streams: Iterable[str]) -> None:
        """Drop streams this worker no longer owns (after a rebalance)."""
        for name in streams:
            self._streams.pop(name, None)

    def streams(self) -> list[str]:
        return list(self._streams)

    def _new_stream(self, name: str, now: float) -> _Stream:
        matching = [rule for rule in self._rules if any(fnmatchcase(name, g) for g in rule.streams)]
        return _Stream(
            series=[
                _Series(rule, value_check(rule), Timing(rule.for_, rule.keep_firing_for))
                for rule in matching
                if not isinstance(rule, AbsenceRule)
            ],
            absences=[_Absence(rule) for rule in matching if isinstance(rule, AbsenceRule)],
            last_seen=now,
        )

    def _decide(self, event: Event, series: _Series, check: Check) -> Alert | None:
        series.state, transition = advance(series.state, check.violated, event.ts, series.timing)
        if transition is Transition.FIRED:
            series.alert = self._value_alert(event, series, check)
            return series.alert
        if transition is Transition.RESOLVED and series.alert is not None:
            ended, series.alert = alerts.resolved(series.alert, ends_at=event.ts), None
            return ended
        return None

    def _value_alert(self, event: Event, series: _Series, check: Check) -> Alert:
        rule = series.rule
        field_name = _field(rule)
        labels = {**event.labels, **_identity(rule, event.stream)}
        if field_name != VALUE_FIELD:
            labels["field"] = field_name
        facts = {
            "stream": event.stream,
            "field": field_name,
            "value": f"{check.value:.6g}",
            "expected": check.expected,
            "reason": check.reason,
        }
        summary = rule.summary or "{stream}: {reason}"
        annotations = {
            "summary": alerts.render_summary(summary, facts),
            "description": f"Rule {rule.name} ({rule.type}) on {event.stream}: {check.reason}.",
            "value": facts["value"],
            "expected": check.expected,
            "rule": rule.type,
            "detector": DETECTOR,
        }
        return alerts.firing(labels, annotations, series.state.since, self._external_url)

    def _absence_alert(self, name: str, stream: _Stream, rule: AbsenceRule) -> Alert:
        facts = {"stream": name, "reason": f"no event for more than {rule.for_:g}s"}
        annotations = {
            "summary": alerts.render_summary(rule.summary or "{stream}: {reason}", facts),
            "description": f"Rule {rule.name} (absence) on {name}: {facts['reason']}.",
            "expected": f"an event at least every {rule.for_:g}s",
            "rule": "absence",
            "detector": DETECTOR,
        }
        labels = {**stream.labels, **_identity(rule, name)}
        starts_at = stream.last_seen + rule.for_
        return alerts.firing(labels, annotations, starts_at, self._external_url)


def _end_absence(absence: _Absence, now: float) -> Alert | None:
    if absence.alert is None:
        return None
    ended, absence.alert = alerts.resolved(absence.alert, ends_at=now), None
    return ended


def _identity(rule: Rule, stream: str) -> dict[str, str]:
    return {
        "alertname": rule.name,
        "stream": stream,
        "severity": rule.severity.value,
        "detector": DETECTOR,
    }


def _field(rule: Rule) -> str:
    return getattr(rule, "field", VALUE_FIELD)
