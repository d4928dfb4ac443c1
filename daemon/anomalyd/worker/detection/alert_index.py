"""The alerts this worker emitted (`Runtime.emit`), for /api/alerts and for feedback:
the ones firing now, a bounded ring of recent state changes, and the last resolved state
of the alerts that ended (bounded too: the longest ended are forgotten first), so a label
can still find an alert that has left the ring. Memory only: a restart starts empty, and
each worker knows the alerts of the streams it judges."""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Collection

from anomalyd.domain import Alert, AlertStatus


class AlertIndex:
    def __init__(self, recent: int = 1000, ended: int = 10_000) -> None:
        self._recent: deque[Alert] = deque(maxlen=recent)
        # Firing alerts are as many as the engine's alert life cycles: bounded by the streams.
        self._firing: dict[str, Alert] = {}
        #: stream -> how many of its alerts fire now.
        self._firing_streams: Counter[str] = Counter()
        self._ended: OrderedDict[str, Alert] = OrderedDict()
        self._max_ended = ended

    def add(self, alert: Alert) -> None:
        """Note a state change (firing or resolved) of an alert."""
        fp = alert.fingerprint
        self._recent.append(alert)
        if alert.status is AlertStatus.FIRING:
            self._ended.pop(fp, None)
            if self._firing.pop(fp, None) is None:  # re-inserted: the most recent last
                self._firing_streams[alert.labels.get("stream", "")] += 1
            self._firing[fp] = alert
            return
        if self._firing.pop(fp, None) is not None:
            self._unfire(alert.labels.get("stream", ""))
        self._ended[fp] = alert
        self._ended.move_to_end(fp)
        while len(self._ended) > self._max_ended:
            self._ended.popitem(last=False)

    def forget(self, streams: Collection[str]) -> None:
        """Streams this worker gave up: their alerts are another worker's now (the ring
        keeps their history)."""
        for alerts in (self._firing, self._ended):
            for fp in [fp for fp, a in alerts.items() if a.labels.get("stream") in streams]:
                del alerts[fp]
        for stream in streams:
            self._firing_streams.pop(stream, None)

    def firing_in(self, stream: str) -> bool:
        """Whether an alert of `stream` fires now."""
        return stream in self._firing_streams

    def _unfire(self, stream: str) -> None:
        self._firing_streams[stream] -= 1
        if self._firing_streams[stream] <= 0:
            del self._firing_streams[stream]

    def get(self, fingerprint: str) -> Alert | None:
        """The latest state of the alert with this fingerprint."""
        return self._firing.get(fingerprint) or self._ended.get(fingerprint)

    def active(self, wanted: Callable[[Alert], bool] = lambda alert: True) -> list[Alert]:
        """The alerts firing now, the most recent first."""
        return [alert for alert in reversed(self._firing.values()) if wanted(alert)]

    def recent(self, wanted: Callable[[Alert], bool] = lambda alert: True) -> list[Alert]:
        """The remembered state changes, newest first."""
        return [alert for alert in reversed(self._recent) if wanted(alert)]

    def history(self, fingerprint: str) -> list[Alert]:
        """The remembered state changes of one alert, newest first."""
        return self.recent(lambda alert: alert.fingerprint == fingerprint)
