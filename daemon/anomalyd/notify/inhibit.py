"""Inhibit: while a source alert fires, mute the target alerts with the same values of
the `equal` labels (Alertmanager's `inhibit/inhibit.go`). An alert matching both sides
of a rule is not inhibited by another alert that also matches both, so a rule cannot
make alerts of one kind mute each other."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from anomalyd.config.matchers import matches_all
from anomalyd.config.routing import InhibitRule
from anomalyd.domain import Alert, AlertStatus
from anomalyd.notify.mute import MuteCheck


def inhibited_by(
    rule: InhibitRule, labels: Mapping[str, str], sources: Iterable[Alert]
) -> Alert | None:
    """A firing source alert of `rule` that inhibits an alert with `labels`, if any."""
    if not matches_all(rule.target_matchers, labels):
        return None
    two_sided = matches_all(rule.source_matchers, labels)
    for source in sources:
        if source.status is not AlertStatus.FIRING:
            continue
        if not matches_all(rule.source_matchers, source.labels):
            continue
        if any(source.labels.get(name, "") != labels.get(name, "") for name in rule.equal):
            continue
        if two_sided and matches_all(rule.target_matchers, source.labels):
            continue
        return source
    return None


class Inhibitor:
    """The rules, and where to find the alerts that may inhibit (every firing alert)."""

    def __init__(
        self, rules: Sequence[InhibitRule], sources: Callable[[], Iterable[Alert]]
    ) -> None:
        self._rules = list(rules)
        self._sources = sources

    def inhibiting(self, labels: Mapping[str, str], sources: Sequence[Alert]) -> Alert | None:
        for rule in self._rules:
            source = inhibited_by(rule, labels, sources)
            if source is not None:
                return source
        return None

    def firing_sources(self) -> list[Alert]:
        return [a for a in self._sources() if a.status is AlertStatus.FIRING]

    @property
    def has_rules(self) -> bool:
        return bool(self._rules)

    #: A `mute.Muter`.
    muted_event = "alert_inhibited"

    def for_flush(self, now: float) -> MuteCheck | None:
        """Inhibition checks against the alerts firing when the flush starts."""
        if not self.has_rules:
            return None
        sources = self.firing_sources()

        def check(labels: Mapping[str, str]) -> str | None:
            source = self.inhibiting(labels, sources)
            return source.fingerprint if source is not None else None

        return check
