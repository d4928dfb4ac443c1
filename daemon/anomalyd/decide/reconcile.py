"""Bring one stream's state in line with a new config: after a reload, or when a
snapshot written under an older config is restored. Pure: no I/O, no clock.

- A rule keeps its memory (z-score statistics, previous point, life cycle) when its
  definition is unchanged: same name and an equal rule. A changed or removed rule
  loses it; a new rule starts empty.
- Mode and model threshold come from the new `model.mode` and `model.overrides`.
- The models are kept (their warm-up too) unless `rebuild` says their shape changed
  (detector, window, seasonality): then they start learning again. `warmup`, `for`
  and `keep_firing_for` apply to kept models as they are.
- An alert firing for a rule that changed or went away, for a model rebuilt or renamed
  (`alertname`, `severity`), or for a detector whose mode no longer pages, has no owner
  any more: it is returned, for the caller to resolve. If we notified, we resolve.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from anomalyd.config import AbsenceRule, Mode, ModelSection, Rule, ValueRule
from anomalyd.decide.lifecycle import INACTIVE, Timing
from anomalyd.decide.streams import Absence, RuleSeries, StreamState, Tracked
from anomalyd.domain import Alert


@dataclass(frozen=True, slots=True)
class Target:
    """What the new config says about one stream."""

    rules: Sequence[Rule]  # the rules matching the stream, in config order
    mode: Mode
    threshold: float
    model: ModelSection
    rebuild_models: bool


def model_shape(model: ModelSection) -> tuple[object, ...]:
    """The settings a model is built with: a change means rebuilding it."""
    return (
        model.detector,
        model.window,
        model.seasonality,
        model.likelihood,
        model.range_tolerance,
    )


def reconcile(
    stream: StreamState, target: Target, new_series: Callable[[ValueRule], RuleSeries]
) -> list[Alert]:
    """Update `stream` in place; returns the firing alerts that nothing owns any more."""
    ended: list[Alert] = []
    stream.rules = _value_rules(stream.rules, target.rules, new_series, ended)
    stream.absences = _absences(stream.absences, target.rules, ended)
    rules_paged, model_paged = stream.rules_page, stream.model_pages
    stream.mode, stream.threshold = target.mode, target.threshold
    if rules_paged and not stream.rules_page:
        for series in stream.rules:
            _end(series.tracked, ended)
    if model_paged and not stream.model_pages:
        for model in stream.models.values():
            _end(model.tracked, ended)
    _models(stream, target, ended)
    return ended


def _value_rules(
    current: Sequence[RuleSeries],
    rules: Sequence[Rule],
    new_series: Callable[[ValueRule], RuleSeries],
    ended: list[Alert],
) -> list[RuleSeries]:
    old = {series.rule.name: series for series in current}
    result = []
    for rule in rules:
        if isinstance(rule, AbsenceRule):
            continue
        series = old.pop(rule.name, None)
        if series is not None and series.rule == rule:
            result.append(series)
            continue
        if series is not None:
            _end(series.tracked, ended)
        result.append(new_series(rule))
    for series in old.values():
        _end(series.tracked, ended)
    return result


def _absences(
    current: Sequence[Absence], rules: Sequence[Rule], ended: list[Alert]
) -> list[Absence]:
    old = {absence.rule.name: absence for absence in current}
    result = []
    for rule in rules:
        if not isinstance(rule, AbsenceRule):
            continue
        absence = old.pop(rule.name, None)
        if absence is None or absence.rule != rule:
            _end_absence(absence, ended)
            absence = Absence(rule)
        result.append(absence)
    for absence in old.values():
        _end_absence(absence, ended)
    return result


def _models(stream: StreamState, target: Target, ended: list[Alert]) -> None:
    model = target.model
    if target.rebuild_models:  # recreated on each field's next point
        for series in stream.models.values():
            _end(series.tracked, ended)
        stream.models.clear()
        return
    identity = {"alertname": model.alertname, "severity": model.severity.value}
    for series in stream.models.values():
        series.model.warmup = model.warmup
        series.tracked.timing = Timing(model.for_, model.keep_firing_for)
        alert = series.tracked.alert
        if alert is not None and any(alert.labels.get(k) != v for k, v in identity.items()):
            _end(series.tracked, ended)


def _end(tracked: Tracked, ended: list[Alert]) -> None:
    """Forget a life cycle; its alert, if it fires, is owed a resolution."""
    if tracked.alert is not None:
        ended.append(tracked.alert)
    tracked.alert, tracked.state = None, INACTIVE


def _end_absence(absence: Absence | None, ended: list[Alert]) -> None:
    if absence is not None and absence.alert is not None:
        ended.append(absence.alert)
        absence.alert = None
