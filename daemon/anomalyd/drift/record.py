"""The record of one closed window of one field: what the `drift` topic carries.

`to_json()` gives the documented schema (README, section "Drift"): plain JSON
types only, times as RFC 3339 UTC text, no NaN or infinity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from anomalyd.config.drift import ReferenceMode
from anomalyd.domain import format_time
from anomalyd.drift.episode import Status
from anomalyd.drift.rule import Comparison, WindowJudgement
from anomalyd.drift.summary import Stats

#: watermark: event time passed end + grace. idle: the stream fell silent and
#: processing time stood in for event time. flush: end of input (a backtest).
ClosedBy = Literal["watermark", "idle", "flush"]


@dataclass(frozen=True, slots=True)
class ReferenceSummary:
    mode: ReferenceMode
    starts: tuple[float, ...]
    stats: Stats

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "windows": [format_time(start) for start in self.starts],
            "stats": self.stats.to_json(),
        }


@dataclass(frozen=True, slots=True)
class StreamCounts:
    """A stream's window as a whole: every field's record carries the same counts."""

    events: int  # valid events in the window
    invalid: int  # invalid events the caller reported for the window
    alerts: int  # alerts the caller reported for the window
    late: int  # reports dropped since the stream's previous window closed: too late

    @property
    def invalid_rate(self) -> float:
        total = self.events + self.invalid
        return self.invalid / total if total else 0.0

    @property
    def alert_rate(self) -> float:
        return self.alerts / self.events if self.events else 0.0


@dataclass(frozen=True, slots=True)
class WindowRecord:
    stream: str
    start: float
    end: float
    closed_by: ClosedBy
    counts: StreamCounts
    status: Status
    episode: str | None
    # The field's part; a window with only invalid events has none (field None).
    field: str | None = None
    stats: Stats | None = None
    score_mean: float | None = None
    scored: int = 0
    reference: ReferenceSummary | None = None
    judgement: WindowJudgement = WindowJudgement.TOO_FEW_EVENTS
    comparison: Comparison | None = None
    change_detected: bool = False
    score_change_detected: bool = False
    #: The stream's windows are expected to hold fewer than `min_count` events.
    sparse: bool = False
    #: The field's daily cycle is taken out (its stats are of the residuals); None:
    #: still learning whether it has one.
    seasonal: bool | None = None

    @property
    def judged(self) -> bool:
        return self.comparison is not None

    def to_json(self) -> dict[str, Any]:
        compared = self.comparison.to_json() if self.comparison is not None else _NOT_COMPARED
        return {
            "stream": self.stream,
            "field": self.field,
            "start": format_time(self.start),
            "end": format_time(self.end),
            "closed_by": self.closed_by,
            "events": self.counts.events,
            "invalid": self.counts.invalid,
            "invalid_rate": self.counts.invalid_rate,
            "alerts": self.counts.alerts,
            "alert_rate": self.counts.alert_rate,
            "late": self.counts.late,
            "stats": self.stats.to_json() if self.stats is not None else None,
            "score_mean": self.score_mean,
            "scored": self.scored,
            "reference": self.reference.to_json() if self.reference is not None else None,
            "judgement": self.judgement.value,
            **compared,
            "change_detected": self.change_detected,
            "score_change_detected": self.score_change_detected,
            "status": self.status.value,
            "episode": self.episode,
            "sparse": self.sparse,
            "seasonal": self.seasonal,
        }


_NOT_COMPARED: dict[str, Any] = {
    "psi": None,
    "ks": None,
    "ks_pvalue": None,
    "chi2_pvalue": None,
    "wasserstein": None,
    "mean_shift": None,
    "scale_ratio": None,
    "pooled_windows": None,
    "shifted_by": [],
}
