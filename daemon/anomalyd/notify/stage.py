"""The notify pipeline: small stages behind one interface, as in Alertmanager
(`notify/notify.go`: `Stage.Exec(ctx, alerts) -> (ctx, alerts)`).

A group's flush runs mute(inhibit) -> mute(silence) -> dedup -> retry(deliver) -> record
(assembled by `builder.py`). Each stage takes the flush context and the alerts, and
hands on a context (with what it learnt) and the alerts left; an empty list stops the
flush there. Routing and grouping sit in
front of the pipeline (`dispatch.py`), as Alertmanager's dispatcher does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from anomalyd.domain import Alert
from anomalyd.notify.nflog import LogEntry


@dataclass(frozen=True, slots=True)
class FlushContext:
    """What a flush knows about its group; stages fill in the later fields.

    `now` is stamped once per flush (Alertmanager's `WithNow`): every decision of one flush
    sees the same time."""

    now: float
    receiver: str
    group_key: str
    group_labels: Mapping[str, str]
    repeat_interval: float
    muted: frozenset[str] = frozenset()  # firing fingerprints muted by inhibit or silence
    reason: str | None = None  # why dedup decided to notify
    notification_id: str = ""
    entry: LogEntry | None = None  # what the notification log records once delivered
    outcome: str = ""  # delivered | dead_lettered


class Stage(Protocol):
    async def exec(
        self, ctx: FlushContext, alerts: Sequence[Alert]
    ) -> tuple[FlushContext, Sequence[Alert]]: ...


class MultiStage:
    """Stages in sequence; stops at the first that leaves no alert."""

    def __init__(self, *stages: Stage) -> None:
        self.stages = stages

    async def exec(
        self, ctx: FlushContext, alerts: Sequence[Alert]
    ) -> tuple[FlushContext, Sequence[Alert]]:
        for stage in self.stages:
            if not alerts:
                break
            ctx, alerts = await stage.exec(ctx, alerts)
        return ctx, alerts
