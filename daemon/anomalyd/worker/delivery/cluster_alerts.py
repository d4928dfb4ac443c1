"""Every worker's alerts: a read model of the alerts topic, which every worker follows
from its start (`kafka/follow.py`), as it follows the silences topic. It holds the
latest state of each alert by fingerprint, so any worker answers for the whole cluster
(`/api/v2/alerts`), whichever streams it judges.

Each alert record carries the name of the worker that wrote it (header `worker`): the
stream's owner when it was judged. The latest one seen per stream says which worker
owns the stream (until a rebalance moves it and its next alert says so).

Alerts still held in notification groups fill in what the topic's retention has
dropped (`firing(held)`). One alert's states are written in order to one partition (the
topic is keyed by alertname), and read in that order; a state replayed after a crash is
no newer than the one held (`group.is_newer`) and is skipped. Resolved alerts are
remembered, bounded, only so that a late replay of their firing state cannot bring them
back.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import structlog

from anomalyd.domain import Alert, AlertStatus
from anomalyd.notify.group import Held, is_newer

_log = structlog.get_logger(__name__)

#: The header naming the worker that wrote an alert record.
WORKER_HEADER = "worker"


@dataclass(frozen=True, slots=True)
class Seen:
    """An alert's latest state, who wrote it and when (the record's time, in seconds)."""

    alert: Alert
    worker: str
    updated_at: float


class ClusterAlerts:
    def __init__(self, resolved: int = 10_000) -> None:
        self._firing: dict[str, Seen] = {}
        self._resolved: OrderedDict[str, Seen] = OrderedDict()
        self._max_resolved = resolved
        #: stream -> the worker that wrote its latest alert.
        self._owners: dict[str, str] = {}
        #: worker -> when it last wrote an alert.
        self._workers: dict[str, float] = {}

    def apply_record(
        self, value: bytes | None, headers: Sequence[tuple[str, bytes]], timestamp_ms: int
    ) -> None:
        """One record of the alerts topic; one this version cannot read is logged and
        skipped (it must not stop the records after it)."""
        try:
            alert = _alert(value)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            _log.warning("cluster_alert_unreadable", detail=str(error)[:200])
            return
        worker = dict(headers).get(WORKER_HEADER, b"").decode(errors="replace")
        self.apply(Seen(alert, worker, timestamp_ms / 1000))

    def apply(self, seen: Seen) -> None:
        alert, fp = seen.alert, seen.alert.fingerprint
        current = self._firing.get(fp) or self._resolved.get(fp)
        if current is not None and not is_newer(alert, current.alert):
            return  # a replayed earlier state
        stream = alert.labels.get("stream")
        if seen.worker:
            self._workers[seen.worker] = seen.updated_at
            if stream:
                self._owners[stream] = seen.worker
        if alert.status is AlertStatus.FIRING:
            self._resolved.pop(fp, None)
            self._firing[fp] = seen
            return
        self._firing.pop(fp, None)
        self._resolved[fp] = seen
        self._resolved.move_to_end(fp)
        while len(self._resolved) > self._max_resolved:
            self._resolved.popitem(last=False)

    def firing(self, held: Iterable[Seen] = ()) -> list[Seen]:
        """The alerts firing now anywhere in the cluster, the oldest first. `held`: the
        alerts in notification groups (`alerts.state`, compacted): one that fires since
        before the alerts topic's retention is no longer in the topic, but still held."""
        firing = dict(self._firing)
        for seen in held:
            fp = seen.alert.fingerprint
            known = firing.get(fp) or self._resolved.get(fp)
            if seen.alert.status is AlertStatus.FIRING and (
                known is None or not is_newer(known.alert, seen.alert)
            ):
                firing[fp] = seen
        return sorted(firing.values(), key=lambda seen: seen.alert.starts_at)

    def get(self, fingerprint: str) -> Seen | None:
        """The latest state of an alert, firing or (recently) resolved."""
        return self._firing.get(fingerprint) or self._resolved.get(fingerprint)

    def owner(self, stream: str) -> str | None:
        """The worker that wrote the stream's latest alert, if any was seen."""
        return self._owners.get(stream)

    def workers(self) -> dict[str, float]:
        """Every worker seen writing an alert, with when it last did."""
        return dict(self._workers)


class WithHeld:
    """The cluster view as the API reads it: with the alerts every worker holds in
    notification groups (`NotifyState.held`) filling in what the topic has dropped."""

    def __init__(self, view: ClusterAlerts, held: Callable[[], Iterable[Held]]) -> None:
        self._view = view
        self._held = held

    def firing(self) -> list[Seen]:
        held = (Seen(item.alert, "", item.received_at) for item in self._held())
        return self._view.firing(held)

    def workers(self) -> dict[str, float]:
        return self._view.workers()


class LocalIndex(Protocol):
    """The alerts this worker emitted (`detection.alert_index.AlertIndex`)."""

    def get(self, fingerprint: str) -> Alert | None: ...

    def active(self, wanted: Callable[[Alert], bool]) -> list[Alert]: ...

    def recent(self, wanted: Callable[[Alert], bool]) -> list[Alert]: ...

    def history(self, fingerprint: str) -> list[Alert]: ...


class ClusterIndex:
    """`/api/alerts` over the cluster: `active` lists every worker's firing alerts (this
    worker's own state of an alert wins when it is newer: the view lags its writes by
    a broker round trip); `recent` and `history` stay this worker's."""

    def __init__(self, local: LocalIndex, cluster: WithHeld) -> None:
        self._local = local
        self._cluster = cluster

    def active(self, wanted: Callable[[Alert], bool]) -> list[Alert]:
        merged = {alert.fingerprint: alert for alert in self._local.active(lambda a: True)}
        for seen in self._cluster.firing():
            mine = self._local.get(seen.alert.fingerprint)
            if mine is None or not is_newer(mine, seen.alert):
                merged[seen.alert.fingerprint] = seen.alert
        newest_first = sorted(merged.values(), key=lambda alert: alert.starts_at, reverse=True)
        return [alert for alert in newest_first if wanted(alert)]

    def recent(self, wanted: Callable[[Alert], bool]) -> list[Alert]:
        return self._local.recent(wanted)

    def history(self, fingerprint: str) -> list[Alert]:
        return self._local.history(fingerprint)


def _alert(value: bytes | None) -> Alert:
    if value is None:
        raise ValueError("a record without a value")
    body: Any = orjson.loads(value)
    if not isinstance(body, Mapping):
        raise TypeError("not a JSON object")
    return Alert.from_json(body)
