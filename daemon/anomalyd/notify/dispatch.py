"""Dispatch: route each alert into the aggregation groups of the routes that take it, and
flush the groups that are due through the notify pipeline (Alertmanager's dispatcher,
`dispatch/dispatch.go`). No I/O of its own and no clock: the caller says what time it
is, so tests drive it with a manual clock, and the worker with the system clock.

The dispatcher holds the latest state of each alert episode (`group.episode_key`) once;
every group that holds it shares that state. When an episode has left every group,
`on_forget` is told (the worker then deletes it from its persisted copy).

A config reload swaps the routing tree and the pipeline (`reconfigure`): no alert is
lost; each is routed again. A group whose route is unchanged (same place in the tree,
same matchers and receiver) keeps its alerts and its timer; an alert that now belongs
elsewhere moves to its new group, which flushes as a group rebuilt after a restart
does; a flush under way ends on the old pipeline.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass

import structlog

from anomalyd.domain import Alert
from anomalyd.metrics import Metrics
from anomalyd.notify.group import (
    AggregationGroup,
    GroupId,
    Held,
    episode_key,
    group_id,
    is_newer,
    next_steps,
    restored_flush_at,
)
from anomalyd.notify.nflog import NotificationLog
from anomalyd.notify.notification import Notifier
from anomalyd.notify.route import RouteNode, group_labels, match_routes, walk
from anomalyd.notify.stage import FlushContext, Stage

_log = structlog.get_logger(__name__)

#: Told when an alert episode has left every group.
Forget = Callable[[Held], Awaitable[None]]


async def _nothing(held: Held) -> None:
    return None


@dataclass(frozen=True, slots=True)
class PendingFlush:
    """A flush that has begun: the group, its alerts as they were, the time stamped, and
    the pipeline of the config in force then (a reload does not change a flush midway)."""

    group: AggregationGroup
    snapshot: dict[str, Held]
    now: float
    pipeline: Stage


class Dispatcher:
    def __init__(
        self,
        root: RouteNode,
        pipeline: Stage,
        log: NotificationLog,
        metrics: Metrics,
        *,
        on_forget: Forget = _nothing,
    ) -> None:
        self._root = root
        self._pipeline = pipeline
        self._log = log
        self._metrics = metrics
        self._on_forget = on_forget
        self._groups: dict[GroupId, AggregationGroup] = {}
        self._index: dict[str, Held] = {}  # by episode
        self._episodes: dict[str, set[str]] = {}  # fingerprint -> its episodes held
        self._holders: dict[str, set[GroupId]] = {}  # episode -> the groups holding it

    # -- alerts in --------------------------------------------------------------------------

    def insert(self, alert: Alert, shard: int, now: float) -> Held | None:
        """Hold a new state of an alert; None if it is stale (see `_is_stale`)."""
        if self._is_stale(alert):
            return None
        held = Held(alert, shard, now)
        self._place(held, lambda route: now + route.group_wait)
        return held

    def _is_stale(self, alert: Alert) -> bool:
        """A state replayed late: its episode is held in a newer state, or a later episode
        of the alert is held (one alert's states are written, and read, in order)."""
        current = self._index.get(episode_key(alert))
        if current is not None and not is_newer(alert, current.alert):
            return True
        held = (self._index[key].alert for key in self._episodes.get(alert.fingerprint, ()))
        return any(other.starts_at > alert.starts_at for other in held)

    def restore(self, held: Iterable[Held], now: float) -> None:
        """Hold alerts read back from persisted state, after a restart or when this worker
        takes over their shard. New groups flush when `restored_flush_at` says."""
        created: list[AggregationGroup] = []
        for item in held:
            current = self._index.get(episode_key(item.alert))
            if current is None or is_newer(item.alert, current.alert):
                created.extend(self._place(item, lambda route: math.inf))
        self._schedule_rebuilt(created, now)

    def reconfigure(self, root: RouteNode, pipeline: Stage, now: float) -> None:
        """Route every held alert through a new tree, and flush through a new pipeline."""
        self._root, self._pipeline = root, pipeline
        nodes = {node.path: node for node in walk(root)}
        for group in list(self._groups.values()):
            node = nodes.get(group.route.path)
            if node is not None and (node.key, node.receiver) == (group.route.key, group.receiver):
                group.route = node  # new timings; same group key, so dedup carries on
            else:
                self._retire(group)
        created: list[AggregationGroup] = []
        for held in list(self._index.values()):
            created.extend(self._reroute(held))
        self._schedule_rebuilt(created, now)

    def clear(self) -> None:
        """Let go of every group and alert (no receiver is left to deliver to)."""
        for group in list(self._groups.values()):
            self._retire(group)
        self._index.clear()
        self._episodes.clear()
        self._holders.clear()

    def _retire(self, group: AggregationGroup) -> None:
        """Take a group whose route is gone out of the dispatcher; its alerts stay held."""
        for key in list(group.alerts):
            self._unhold(group, key)
        del self._groups[group.id]
        self._metrics.groups.labels(group.receiver).dec()

    def _reroute(self, held: Held) -> list[AggregationGroup]:
        """Move an alert out of the groups its routes no longer lead to, into the new ones."""
        labels, key = held.alert.labels, episode_key(held.alert)
        wanted = {group_id(r, group_labels(r, labels)) for r in match_routes(self._root, labels)}
        for gid in self._holders.get(key, set()) - wanted:
            group = self._groups[gid]
            self._unhold(group, key)
            self._discard_if_empty(group)
        return self._place(held, lambda route: math.inf)

    def _unhold(self, group: AggregationGroup, key: str) -> None:
        del group.alerts[key]
        self._metrics.queued_alerts.labels(group.receiver).dec()
        self._holders[key].discard(group.id)

    def _schedule_rebuilt(self, created: list[AggregationGroup], now: float) -> None:
        """New groups of alerts that were already held flush as after a restart: a
        group_interval after their last notification, or a group_wait after they came."""
        for group in created:
            entry = self._log.get(group.receiver, group.key)
            oldest = min(h.received_at for h in group.alerts.values())
            last = entry.timestamp if entry is not None else None
            group.next_flush = restored_flush_at(group.route, now, last, oldest)

    def drop_shards(self, shards: Collection[int]) -> None:
        """Let go of the alerts of shards another worker took over (it restores them)."""
        for group in list(self._groups.values()):
            for held in group.drop_shards(shards):
                self._release(group, held)
            self._discard_if_empty(group)

    def _place(
        self, held: Held, first_flush: Callable[[RouteNode], float]
    ) -> list[AggregationGroup]:
        alert, key = held.alert, episode_key(held.alert)
        self._index[key] = held
        self._episodes.setdefault(alert.fingerprint, set()).add(key)
        created = []
        for route in match_routes(self._root, alert.labels):
            labels = group_labels(route, alert.labels)
            group = self._groups.get(group_id(route, labels))
            if group is None:
                group = AggregationGroup(route, labels, first_flush(route))
                self._groups[group.id] = group
                self._metrics.groups.labels(group.receiver).inc()
                created.append(group)
            if group.put(held):
                self._metrics.queued_alerts.labels(group.receiver).inc()
            self._holders.setdefault(key, set()).add(group.id)
        return created

    # -- views ------------------------------------------------------------------------------

    def alerts(self) -> list[Alert]:
        """The latest state of every alert episode held."""
        return [held.alert for held in self._index.values()]

    def groups(self) -> list[AggregationGroup]:
        return list(self._groups.values())

    def next_flush_at(self) -> float | None:
        times = [g.next_flush for g in self._groups.values() if g.alerts and not g.flushing]
        return min(times, default=None)

    # -- flushing ---------------------------------------------------------------------------

    def take_due(self, now: float) -> list[PendingFlush]:
        """Begin the flush of every group that is due."""
        return [
            PendingFlush(group, group.start_flush(now), now, self._pipeline)
            for group in self._groups.values()
            if group.is_due(now)
        ]

    async def flush_due(self, now: float) -> None:
        """Flush every due group and wait for all of them (tests; the worker runs each
        flush as its own task)."""
        await asyncio.gather(*(self.flush(pending) for pending in self.take_due(now)))

    async def flush(self, pending: PendingFlush) -> None:
        """One pass of a group through the pipeline. If the pipeline fails (its state could
        not be persisted), the group keeps its alerts and tries again next interval."""
        group = pending.group
        log = _log.bind(receiver=group.receiver, group_key=group.key)
        ctx = FlushContext(
            now=pending.now,
            receiver=group.receiver,
            group_key=group.key,
            group_labels=group.labels,
            repeat_interval=group.route.repeat_interval,
        )
        entry = self._log.get(group.receiver, group.key)
        told_firing = entry.firing if entry is not None else frozenset()
        told_resolved = entry.resolved if entry is not None else frozenset()
        steps, finished = next_steps(pending.snapshot, told_firing, told_resolved)
        try:
            ctx, sent = await pending.pipeline.exec(ctx, [step.alert for step in steps])
        except Exception:
            log.exception("group_flush_failed", retry_in=group.route.group_interval)
            group.end_flush(pending.snapshot, delivered=False)
            return
        if ctx.reason is not None:
            self._metrics.notifications.labels(group.receiver, ctx.reason).inc()
            log.info(
                "notification_flushed",
                reason=ctx.reason,
                outcome=ctx.outcome,
                id=ctx.notification_id,
                alerts=len(sent),
            )
        finished += [step.key for step in steps if step.finished_by(ctx.muted, sent)]
        for held in group.end_flush(pending.snapshot, delivered=True, finished=finished):
            await self._forget_if_released(group, held)
        self._discard_if_empty(group)  # its log entry stays: see `expire_log`

    async def _forget_if_released(self, group: AggregationGroup, held: Held) -> None:
        if self._release(group, held):
            await self._on_forget(held)

    def _release(self, group: AggregationGroup, held: Held) -> bool:
        """The group no longer holds `held`; True if no group holds its episode any more."""
        key, fp = episode_key(held.alert), held.alert.fingerprint
        self._metrics.queued_alerts.labels(group.receiver).dec()
        holders = self._holders.get(key, set())
        holders.discard(group.id)
        if holders:
            return False
        self._holders.pop(key, None)
        if self._index.get(key) is held:
            del self._index[key]
            episodes = self._episodes.get(fp, set())
            episodes.discard(key)
            if not episodes:
                self._episodes.pop(fp, None)
        return True

    def _discard_if_empty(self, group: AggregationGroup) -> bool:
        if group.alerts or group.flushing or self._groups.get(group.id) is not group:
            return False
        del self._groups[group.id]
        self._metrics.groups.labels(group.receiver).dec()
        return True

    async def expire_log(self, before: float) -> int:
        """Forget the log entries of groups not open here, with nothing firing, that said
        nothing since `before`. Returns how many. An entry outlives its group until then:
        the episodes it told resolved, replayed after a crash, are known as no news."""
        open_groups = {(group.receiver, group.key) for group in self._groups.values()}
        expired = [
            entry
            for entry in self._log.idle_before(before)
            if (entry.receiver, entry.group_key) not in open_groups
        ]
        for entry in expired:
            await self._log.forget(entry.receiver, entry.group_key)
        return len(expired)


__all__ = ["Dispatcher", "Forget", "Notifier", "PendingFlush"]
