"""Replay history through the worker's own detection pipeline, with no broker."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from anomalyd.config import AnomalydConfig
from anomalyd.domain import Alert, AlertStatus, Event, Verdict
from anomalyd.drift import WindowRecord
from anomalyd.ingest import InvalidEvent
from anomalyd.pipeline import Outcome, Pipeline


@dataclass
class BacktestResult:
    verdicts: list[Verdict] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    drift: list[WindowRecord] = field(default_factory=list)
    invalid: Counter[str] = field(default_factory=Counter)
    events: int = 0

    def firing(self) -> list[Alert]:
        return [a for a in self.alerts if a.status is AlertStatus.FIRING]

    def add(self, outcome: Outcome) -> None:
        self.verdicts.extend(outcome.verdicts)
        self.alerts.extend(outcome.alerts)
        self.drift.extend(outcome.drift)


def backtest(config: AnomalydConfig, rows: Iterable[Event | InvalidEvent]) -> BacktestResult:
    """Judge every event as the worker would; event time stands in for the wall clock."""
    pipeline = Pipeline(config)
    result = BacktestResult()
    interval = config.alerting.absence_check_interval
    next_tick: float | None = None
    for row in rows:
        if isinstance(row, InvalidEvent):
            result.invalid[row.code] += 1
            continue
        # The worker's timers tick in wall-clock time; here in event time, once per gap:
        # what a tick finds (silent streams, idle windows) depends on when they went
        # quiet, not on how many ticks passed, so one tick before the next row suffices.
        if next_tick is None:
            next_tick = row.ts + interval
        if row.ts >= next_tick:
            result.add(pipeline.tick(row.ts))
            next_tick = row.ts + interval
        result.add(pipeline.process(row, now=row.ts))
        result.events += 1
    result.add(pipeline.finish())
    return result


def with_progress(
    rows: Iterator[Event | InvalidEvent], total: int
) -> Iterator[Event | InvalidEvent]:
    """A progress bar on stderr for long files when it is a terminal."""
    if total < 50_000:
        return rows
    from tqdm import tqdm

    return iter(tqdm(rows, total=total, unit="ev", disable=None, leave=False))
