"""Deliver: one attempt to hand a group's notification to its receiver. Raises the
receiver's DeliveryError; the retry stage around it decides what happens next."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from anomalyd.domain import Alert
from anomalyd.notify.notification import Notification, Notifier
from anomalyd.notify.stage import FlushContext


def notification_for(ctx: FlushContext, alerts: Sequence[Alert]) -> Notification:
    return Notification(
        receiver=ctx.receiver,
        group_key=ctx.group_key,
        group_labels=dict(ctx.group_labels),
        alerts=tuple(alerts),
        notification_id=ctx.notification_id,
    )


class DeliverStage:
    def __init__(self, notifiers: Mapping[str, Notifier]) -> None:
        self._notifiers = dict(notifiers)

    async def exec(
        self, ctx: FlushContext, alerts: Sequence[Alert]
    ) -> tuple[FlushContext, Sequence[Alert]]:
        await self._notifiers[ctx.receiver].send(notification_for(ctx, alerts))
        return ctx, alerts
