"""Mute: one stage over a muter, as Alertmanager's `MuteStage` over its `Muter`
(`notify/notify.go`). The pipeline has two: inhibition (`inhibit.Inhibitor`) then
silences (`silence.Silences`). A muted firing alert leaves the flush and is noted in
`FlushContext.muted`; resolved alerts go on: dedup sends a resolution only for what
was notified as firing."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Protocol

import structlog

from anomalyd.domain import Alert, AlertStatus
from anomalyd.notify.stage import FlushContext

_log = structlog.get_logger(__name__)

#: One alert's labels -> the id of what mutes it (a silence, a source alert), or None.
MuteCheck = Callable[[Mapping[str, str]], str | None]


class Muter(Protocol):
    #: The debug event logged for each muted alert: `alert_inhibited`, `alert_silenced`.
    muted_event: str

    def for_flush(self, now: float) -> MuteCheck | None:
        """The check for one flush at `now`, or None when nothing can mute."""
        ...


class Count(Protocol):
    """A counter to add to (a Prometheus counter's child)."""

    def inc(self, amount: float = 1) -> None: ...


class MuteStage:
    """Takes the firing alerts its muter mutes out of the flush; `muted` counts them."""

    def __init__(self, muter: Muter, muted: Count | None = None) -> None:
        self._muter = muter
        self._muted = muted

    async def exec(
        self, ctx: FlushContext, alerts: Sequence[Alert]
    ) -> tuple[FlushContext, Sequence[Alert]]:
        check = self._muter.for_flush(ctx.now)
        if check is None:
            return ctx, alerts
        muted: set[str] = set()
        for alert in alerts:
            if alert.status is not AlertStatus.FIRING:
                continue
            by = check(alert.labels)
            if by is not None:
                muted.add(alert.fingerprint)
                _log.debug(self._muter.muted_event, fingerprint=alert.fingerprint, by=by)
        if muted and self._muted is not None:
            self._muted.inc(len(muted))
        kept = [a for a in alerts if a.fingerprint not in muted]
        return replace(ctx, muted=ctx.muted | muted), kept
