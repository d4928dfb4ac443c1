"""Group: the alerts of one route with the same group labels, and when they are flushed
(Alertmanager's aggregation group, `dispatch/dispatch.go`).

A new group waits `group_wait` for company before its first flush, then flushes every
`group_interval` while it holds alerts; each flush is one pass through the pipeline and
at most one notification. A group flushes once at a time. Pure: time is an argument.

A group holds alert *episodes* (`episode_key`: the fingerprint and the start), each at its
latest state, not just the latest state of each alert: an episode that fired and resolved
before a flush, or while the worker was down, must not be merged into the next one (its
page would be lost). Each flush says one thing per alert (`next_steps`): the oldest of its
episodes with something left to say. An episode leaves the group once the flush that
finished it completed (`Step.finished_by`), unless it changed meanwhile.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Set
from dataclasses import dataclass, replace

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


def episode_key(alert: Alert) -> str:
    """One episode of an alert: its fingerprint and its start (event time). Its firing and
    its resolved state share the key; the same alert firing again later has another."""
    return f"{alert.fingerprint}@{alert.starts_at!r}"


def resolved_upto(told_resolved: Collection[str]) -> dict[str, float]:
    """Per fingerprint, the start of the latest episode told resolved (from episode keys;
    a key without a start, from an earlier version, is left out)."""
    upto: dict[str, float] = {}
    for key in told_resolved:
        fp, _, start = key.partition("@")
        try:
            upto[fp] = max(float(start), upto.get(fp, -math.inf))
        except ValueError:
            continue  # a fingerprint alone: no episode to compare with
    return upto


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
        """Hold the episode's latest state; True if the group did not hold it before."""
        key = episode_key(held.alert)
        new = key not in self.alerts
        self.alerts[key] = held
        return new

    def is_due(self, now: float) -> bool:
        return bool(self.alerts) and not self.flushing and now >= self.next_flush

    def start_flush(self, now: float) -> dict[str, Held]:
        """Mark the flush begun and the next one a group_interval away (Alertmanager resets
        the timer as the flush starts); the alerts as they are now."""
        self.flushing = True
        self.next_flush = now + self.route.group_interval
        return dict(self.alerts)

    def end_flush(
        self, snapshot: Mapping[str, Held], delivered: bool, finished: Collection[str] = ()
    ) -> list[Held]:
        """After a flush: if it completed, drop the `finished` episodes it saw that did not
        change since. Returns the episodes dropped."""
        self.flushing = False
        if not delivered:
            return []
        dropped = [
            held
            for key, held in snapshot.items()
            if key in finished and self.alerts.get(key) is held
        ]
        for held in dropped:
            del self.alerts[episode_key(held.alert)]
        return dropped

    def drop_shards(self, shards: Collection[int]) -> list[Held]:
        dropped = [held for held in self.alerts.values() if held.shard in shards]
        for held in dropped:
            del self.alerts[episode_key(held.alert)]
        return dropped


@dataclass(frozen=True, slots=True)
class Step:
    """What a flush says of one alert: `alert` is the state to send for episode `key`.
    `fired_first` marks a resolved episode the receiver never heard fire, sent as firing
    (its resolution follows at a later flush)."""

    key: str
    alert: Alert
    fired_first: bool = False

    def finished_by(self, muted: Set[str], sent: Collection[Alert]) -> bool:
        """Whether the flush that carried this step left nothing to say of its episode: its
        resolution went out (delivered or dead-lettered), or it was muted before the
        receiver heard of it (never sent, firing or resolved)."""
        if self.fired_first:
            return self.alert.fingerprint in muted
        if self.alert.status is not AlertStatus.RESOLVED:
            return False
        fp = self.alert.fingerprint
        return any(a.fingerprint == fp and a.status is AlertStatus.RESOLVED for a in sent)


def next_steps(
    snapshot: Mapping[str, Held], told_firing: Set[str], told_resolved: Set[str]
) -> tuple[list[Step], list[str]]:
    """Per alert, the oldest of its episodes with something left to say, given the episodes
    the receiver was told are firing and the latest of each alert it was told resolved;
    and the episodes with nothing left to say (told resolved, or older than one the
    receiver was told of: a replay after a crash). Steps come oldest first, then by
    fingerprint: a stable order for payloads."""
    done_upto = resolved_upto(told_resolved)
    episodes: dict[str, list[tuple[str, Held]]] = {}
    for key, held in snapshot.items():
        episodes.setdefault(held.alert.fingerprint, []).append((key, held))
    steps: list[Step] = []
    finished: list[str] = []
    for held_episodes in episodes.values():
        ordered = sorted(held_episodes, key=lambda item: item[1].alert.starts_at)
        # Start from the episode the receiver believes fires: older ones are replays.
        told = [i for i, (key, _) in enumerate(ordered) if key in told_firing]
        first = told[-1] if told else 0
        finished.extend(key for key, _ in ordered[:first])
        for key, held in ordered[first:]:
            if held.alert.starts_at <= done_upto.get(held.alert.fingerprint, -math.inf):
                finished.append(key)
                continue
            steps.append(_step(key, held.alert, key in told_firing))
            break
    steps.sort(key=lambda step: (step.alert.starts_at, step.alert.fingerprint))
    return steps, finished


def _step(key: str, alert: Alert, told_firing: bool) -> Step:
    if alert.status is AlertStatus.FIRING or told_firing:
        return Step(key, alert)
    # Resolved before the receiver heard it fire (within group_wait, between two flushes,
    # or while the worker was down): a page missed is an incident missed, so it fires first.
    return Step(key, replace(alert, status=AlertStatus.FIRING, ends_at=None), fired_first=True)
