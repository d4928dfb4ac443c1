"""Replay history through the worker's own detection engine, with no broker."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from anomalyd.config import AnomalydConfig
from anomalyd.decide import Engine
from anomalyd.domain import Alert, AlertStatus, Event, Verdict
from anomalyd.ingest import InvalidEvent


@dataclass
class BacktestResult:
    verdicts: list[Verdict] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    invalid: Counter[str] = field(default_factory=Counter)
    events: int = 0

    def firing(self) -> list[Alert]:
        return [a for a in self.alerts if a.status is AlertStatus.FIRING]


def backtest(config: AnomalydConfig, rows: Iterable[Event | InvalidEvent]) -> BacktestResult:
    """Judge every event as the worker would; event time stands in for the wall clock."""
    engine = Engine(config.rules, config.model, config.app.external_url)
    result = BacktestResult()
    interval = config.alerting.absence_check_interval
    next_absence_check: float | None = None
    for row in rows:
        if isinstance(row, InvalidEvent):
            result.invalid[row.code] += 1
            continue
        # Absence is judged on a timer in the worker; here the timer ticks in event time.
        if next_absence_check is None:
            next_absence_check = row.ts + interval
        while row.ts >= next_absence_check:
            result.alerts.extend(engine.check_absence(next_absence_check))
            next_absence_check += interval
        judgement = engine.process(row, now=row.ts)
        result.events += 1
        result.verdicts.extend(judgement.verdicts)
        result.alerts.extend(judgement.alerts)
    return result


def with_progress(
    rows: Iterator[Event | InvalidEvent], total: int
) -> Iterator[Event | InvalidEvent]:
    """A progress bar on stderr for long files when it is a terminal."""
    if total < 50_000:
        return rows
    from tqdm import tqdm

    return iter(tqdm(rows, total=total, unit="ev", disable=None, leave=False))
