"""Group: the alerts of one route with the same group labels, and when they are flushed
(Alertmanager's aggregation group, `dispatch/dispatch.go`).

A new group waits `group_wait` for company before its first flush, then flushes every
`group_interval` while it holds alerts; each flush is one pass through the pipeline and
at most one notification. A group flushes once at a time. Resolved alerts leave the
group after the flush that saw them, unless they changed meanwhile. Pure: time is an
argument.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from anomalyd.domain import Alert, AlertStatus
from anomalyd.notify.route import RouteNode, group_key

#: A group's identity here: its route's place in the tree and its group labels.
GroupId = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True, slots=True)
class Held:
    """An alert as the dispatcher holds it: `shard` is where it came from (the worker drops
    a shard's alerts when another worker takes it over); `received_at` is when it came."""

    alert: Alert
    shard: int
    received_at: float


def is_newer(incoming: Alert, held: Alert) -> bool:
    """Whether `incoming` is at least as recent a state of the alert as `held`: a later
    start, or the same start and resolved. A replayed stale state never wins."""
    return _order(incoming) >= _order(held)


def _order(alert: Alert) -> tuple[float, bool]:
    return (alert.starts_at, alert.status is AlertStatus.RESOLVED)


def group_id(route: RouteNode, labels: Mapping[str, str]) -> GroupId:
    return (route.path, tuple(sorted(labels.items())))


def restored_flush_at(
    route: RouteNode, now: float, last_notified: float | None, oldest_received: float
) -> float:
    """When a group rebuilt after a restart or a rebalance flushes first: a group_interval
    after its last notification, or a group_wait after its oldest alert came; now at the
    earliest."""
    if last_notified is not None:
        return max(now, last_notified + route.group_interval)
    return max(now, oldest_received + route.group_wait)


class AggregationGroup:
    def __init__(self, route: RouteNode, labels: Mapping[str, str], next_flush: float) -> None:
        self.route = route
        self.labels = dict(labels)
        self.id = group_id(route, labels)
        self.key = group_key(route, labels)
        self.alerts: dict[str, Held] = {}
        self.next_flush = next_flush
        self.flushing = False

    @property
    def receiver(self) -> str:
        return self.route.receiver

    def put(self, held: Held) -> bool:
        """Hold the alert's latest state; True if the group did not hold it before."""
        new = held.alert.fingerprint not in self.alerts
        self.alerts[held.alert.fingerprint] = held
        return new

    def is_due(self, now: float) -> bool:
        return bool(self.alerts) and not self.flushing and now >= self.next_flush

    def start_flush(self, now: float) -> dict[str, Held]:
        """Mark the flush begun and the next one a group_interval away (Alertmanager resets
        the timer as the flush starts); the alerts as they are now."""
        self.flushing = True
        self.next_flush = now + self.route.group_interval
        return dict(self.alerts)

    def end_flush(self, snapshot: Mapping[str, Held], delivered: bool) -> list[Held]:
        """After a flush: drop the resolved alerts it saw and that did not change since,
        if it completed. Returns the alerts dropped."""
        self.flushing = False
        if not delivered:
            return []
        dropped = [
            held
            for fp, held in snapshot.items()
            if held.alert.status is AlertStatus.RESOLVED and self.alerts.get(fp) is held
        ]
        for held in dropped:
            del self.alerts[held.alert.fingerprint]
        return dropped

    def drop_shards(self, shards: Collection[int]) -> list[Held]:
        dropped = [held for held in self.alerts.values() if held.shard in shards]
        for held in dropped:
            del self.alerts[held.alert.fingerprint]
        return dropped

    def sorted_alerts(self, snapshot: Mapping[str, Held]) -> list[Alert]:
        """Oldest first, then by fingerprint: a stable order for payloads."""
        alerts = [held.alert for held in snapshot.values()]
        return sorted(alerts, key=lambda a: (a.starts_at, a.fingerprint))
