"""Dedup: whether a group's flush must notify its receiver, decided from the
notification log (Alertmanager's `DedupStage.needsUpdate`), and what to send.

One rule on top of Alertmanager's: **if we notified, we resolve**. An alert the receiver
was told is firing gets its resolved notification even when it is silenced or inhibited
by then; and an alert muted while firing stays in the log as firing, so its resolution
is still sent later. An alert the receiver never heard of is never sent as resolved:
the group sends such an episode as firing first (`group.next_steps`).

The log names alert episodes (`group.episode_key`: fingerprint and start), not alerts, so
a new episode of an alert whose earlier one the receiver was told of is news.

`notification_id` names a notification by its content, so the same notification gets
the same id on every retry and after a restart: receivers use it as an idempotency key
(the webhook receiver sends it as the Standard Webhooks `webhook-id`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass, replace
from enum import StrEnum

import orjson

from anomalyd.domain import Alert, AlertStatus
from anomalyd.notify.group import episode_key
from anomalyd.notify.nflog import LogEntry, NotificationLog
from anomalyd.notify.stage import FlushContext


class Reason(StrEnum):
    """Why a flush notifies (a metric label and a log field)."""

    FIRST = "first_notification"
    NEW_ALERTS = "new_alerts"
    SOME_RESOLVED = "some_resolved"
    ALL_RESOLVED = "all_resolved"
    REPEAT = "repeat_interval"


def notification_id(
    receiver: str,
    group_key: str,
    firing: Iterable[str],
    resolved: Iterable[str],
    after: float | None = None,
) -> str:
    """A deterministic id for the notification of these alert states to this receiver for
    this group: 32 hex digits of a SHA-256 (order does not matter).

    `firing` and `resolved` name alert *states* (`alert_state`: the fingerprint with its
    start, and end once resolved), which event time fixes: a retry, or a redo after a
    crash (the worker replays from its last commit and decides the same), sends the same
    id, and receivers can drop the duplicate; the same alerts firing again later are a
    new episode, with new start times and a new id. `after`, the time of the last
    notification the log recorded for the group, is given for reminders only: each
    reminder is a new message with a new id, so receivers that drop seen ids still get
    reminders.
    """
    content = [receiver, group_key, sorted(set(firing)), sorted(set(resolved)), after]
    return hashlib.sha256(orjson.dumps(content)).hexdigest()[:32]


def alert_state(alert: Alert) -> str:
    """What a notification says of one alert: which alert, since when, until when."""
    ends = f"/{alert.ends_at!r}" if alert.status is AlertStatus.RESOLVED else ""
    return f"{alert.fingerprint}@{alert.starts_at!r}{ends}"


def needs_update(
    entry: LogEntry | None,
    firing: Set[str],
    resolved: Set[str],
    repeat_interval: float,
    now: float,
) -> Reason | None:
    """Why to notify now, or None not to.

    `firing`: episodes firing in the group and not muted; `resolved`: episodes resolved
    in the group. Only resolutions of episodes the log holds as firing count.
    """
    notified = entry.firing if entry is not None else frozenset()
    if not firing <= notified:
        return Reason.NEW_ALERTS if notified else Reason.FIRST
    if entry is None:
        return None  # nothing firing, nothing notified
    if resolved & notified:
        return Reason.SOME_RESOLVED if firing else Reason.ALL_RESOLVED
    if firing and now - entry.timestamp >= repeat_interval:
        return Reason.REPEAT
    return None


@dataclass(frozen=True, slots=True)
class Plan:
    """What one notification carries, and what the log holds once it is delivered."""

    alerts: tuple[Alert, ...]
    entry: LogEntry
    notification_id: str


def plan(
    ctx: FlushContext,
    entry: LogEntry | None,
    alerts: Sequence[Alert],
    muted: Set[str],
    reminder: bool = False,
) -> Plan:
    """The firing alerts that are not muted, plus the resolved alerts the receiver was told
    were firing. The log then holds as firing what was sent firing, plus what it held as
    firing and was not resolved now (muted, or gone from the group); and as resolved, the
    latest episode of each alert it was told resolved (a replay of it is no news)."""
    notified = entry.firing if entry is not None else frozenset()
    send = tuple(alert for alert in alerts if _sendable(alert, notified, muted))
    firing = frozenset(episode_key(a) for a in send if a.status is AlertStatus.FIRING)
    resolved = frozenset(episode_key(a) for a in send if a.status is AlertStatus.RESOLVED)
    # What was sent of an alert replaces what the receiver was told of it before.
    told = {a.fingerprint for a in send}
    still = frozenset(key for key in notified if key.partition("@")[0] not in told)
    ended = entry.resolved if entry is not None else frozenset()
    new_entry = LogEntry(
        receiver=ctx.receiver,
        group_key=ctx.group_key,
        firing=firing | still,
        resolved=resolved | {key for key in ended if key.partition("@")[0] not in told},
        timestamp=ctx.now,
    )
    after = entry.timestamp if reminder and entry is not None else None
    states = [alert_state(a) for a in send]
    firing_states = [
        state for state, a in zip(states, send, strict=True) if a.status is AlertStatus.FIRING
    ]
    resolved_states = [
        state for state, a in zip(states, send, strict=True) if a.status is AlertStatus.RESOLVED
    ]
    notification = notification_id(
        ctx.receiver, ctx.group_key, firing_states, resolved_states, after
    )
    return Plan(send, new_entry, notification)


def _sendable(alert: Alert, notified: Set[str], muted: Set[str]) -> bool:
    if alert.status is AlertStatus.FIRING:
        return alert.fingerprint not in muted
    return episode_key(alert) in notified


def split(alerts: Sequence[Alert], muted: Set[str]) -> tuple[frozenset[str], frozenset[str]]:
    """(firing and not muted, resolved) episodes; `muted` holds fingerprints."""
    firing = frozenset(
        episode_key(a)
        for a in alerts
        if a.status is AlertStatus.FIRING and a.fingerprint not in muted
    )
    resolved = frozenset(episode_key(a) for a in alerts if a.status is AlertStatus.RESOLVED)
    return firing, resolved


class DedupStage:
    """Stops the flush unless the group changed for its receiver or the repeat interval
    passed; otherwise hands on exactly the alerts to send."""

    def __init__(self, log: NotificationLog) -> None:
        self._log = log

    async def exec(
        self, ctx: FlushContext, alerts: Sequence[Alert]
    ) -> tuple[FlushContext, Sequence[Alert]]:
        entry = self._log.get(ctx.receiver, ctx.group_key)
        firing, resolved = split(alerts, ctx.muted)
        reason = needs_update(entry, firing, resolved, ctx.repeat_interval, ctx.now)
        if reason is None:
            return ctx, ()
        chosen = plan(ctx, entry, alerts, ctx.muted, reminder=reason is Reason.REPEAT)
        ctx = replace(
            ctx, reason=reason.value, notification_id=chosen.notification_id, entry=chosen.entry
        )
        return ctx, chosen.alerts


class RecordStage:
    """Writes the log entry once the notification is delivered or dead-lettered
    (Alertmanager's SetNotifiesStage). A dead-lettered notification counts as handled:
    it is in the dead-letter topic with its reason, and is not sent again."""

    def __init__(self, log: NotificationLog) -> None:
        self._log = log

    async def exec(
        self, ctx: FlushContext, alerts: Sequence[Alert]
    ) -> tuple[FlushContext, Sequence[Alert]]:
        if ctx.entry is None:
            raise RuntimeError("the record stage runs after the dedup stage")
        await self._log.record(ctx.entry)
        return ctx, alerts
