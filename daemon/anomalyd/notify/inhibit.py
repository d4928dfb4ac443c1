"""Inhibit: while a source alert fires, mute the target alerts with the same values of
the `equal` labels (Alertmanager's `inhibit/inhibit.go`). An alert matching both sides
of a rule is not inhibited by another alert that also matches both, so a rule cannot
make alerts of one kind mute each other."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace

import structlog

from anomalyd.config.routing import InhibitRule, matches_all
from anomalyd.domain import Alert, AlertStatus
from anomalyd.notify.pipeline import Count, FlushContext

_log = structlog.get_logger(__name__)


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


class InhibitStage:
    """Takes inhibited firing alerts out of the flush and notes them as muted."""

    def __init__(self, inhibitor: Inhibitor, muted: Count | None = None) -> None:
        self._inhibitor = inhibitor
        self._muted = muted

    async def exec(
        self, ctx: FlushContext, alerts: Sequence[Alert]
    ) -> tuple[FlushContext, Sequence[Alert]]:
        if not self._inhibitor.has_rules:
            return ctx, alerts
        sources = self._inhibitor.firing_sources()
        muted: set[str] = set()
        for alert in alerts:
            if alert.status is not AlertStatus.FIRING:
                continue
            source = self._inhibitor.inhibiting(alert.labels, sources)
            if source is not None:
                muted.add(alert.fingerprint)
                _log.debug("alert_inhibited", fingerprint=alert.fingerprint, by=source.fingerprint)
        if muted and self._muted is not None:
            self._muted.inc(len(muted))
        kept = [a for a in alerts if a.fingerprint not in muted]
        return replace(ctx, muted=ctx.muted | muted), kept
