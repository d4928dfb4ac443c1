"""Pages: what people receive, as per-row scores NAB can judge (pure, no I/O).

A page is the start of an alert: the row where it starts firing scores 1, every other row
0, so a sustained condition counts once, as it pages once, and NAB's threshold search has
nothing to tune. DataDrift alerts are about windows of data, not about a row: not pages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from anomalyd.domain import Alert, AlertStatus

__all__ = ["NOT_PAGES", "page_rows", "pages", "stream_days"]

#: Alertnames that are about windows of data, not a row's value.
NOT_PAGES = frozenset({"DataDrift"})
_DAY = 86_400.0


def pages(alerts: Iterable[Alert]) -> list[Alert]:
    """The alerts that start a page: firing ones, drift alerts aside."""
    return [
        a
        for a in alerts
        if a.status is AlertStatus.FIRING and a.labels.get("alertname") not in NOT_PAGES
    ]


def page_rows(alerts: Iterable[Alert], timestamps: Sequence[float]) -> list[float]:
    """1.0 on each row where a page starts, 0.0 elsewhere.

    >>> page = Alert({"alertname": "High"}, {}, AlertStatus.FIRING, 20.0, "f")
    >>> page_rows([page], [10.0, 20.0, 30.0])
    [0.0, 1.0, 0.0]
    """
    row_of = {ts: i for i, ts in enumerate(timestamps)}
    rows = [0.0] * len(timestamps)
    for alert in pages(alerts):
        row = row_of.get(alert.starts_at)
        if row is not None:
            rows[row] = 1.0
    return rows


def stream_days(spans: Iterable[tuple[float, float]]) -> float:
    """Days of data in all: each (first, last) event time of a stream."""
    return sum(last - first for first, last in spans) / _DAY
