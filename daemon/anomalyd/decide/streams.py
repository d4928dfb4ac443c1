"""The state the engine keeps per stream, and how one point moves it."""

from __future__ import annotations

from dataclasses import dataclass, field

from anomalyd.config import AbsenceRule, Mode, ValueRule, ZScoreRule
from anomalyd.decide.feedback import StreamFeedback
from anomalyd.decide.lifecycle import INACTIVE, AlertState, Phase, Timing, Transition, advance
from anomalyd.detect import Check, SeriesModel, ValueCheck
from anomalyd.domain import Alert


@dataclass(slots=True)
class Tracked:
    """An alert's life cycle and, while it fires, the alert (to resolve it as it was sent)."""

    timing: Timing
    state: AlertState = INACTIVE
    alert: Alert | None = None

    @property
    def firing(self) -> bool:
        return self.state.phase is Phase.FIRING

    def step(self, violated: bool, ts: float) -> Transition | None:
        self.state, transition = advance(self.state, violated, ts, self.timing)
        return transition


@dataclass(slots=True)
class RuleSeries:
    """One value rule on one field of a stream: its memory and its alert."""

    rule: ValueRule
    field: str
    check: ValueCheck
    tracked: Tracked

    def judge(self, value: float, ts: float) -> Check | None:
        return self.check.check(value, ts, self.tracked.firing)

    @property
    def statistical(self) -> bool:
        """A rule that learns what is usual (z-score) rather than a threshold people set:
        in hybrid mode the warm model takes its place (see `Engine._judge_field`)."""
        return isinstance(self.rule, ZScoreRule)


@dataclass(slots=True)
class ModelSeries:
    """The online model of one field of a stream, and its alert."""

    model: SeriesModel
    tracked: Tracked


@dataclass(slots=True)
class Absence:
    rule: AbsenceRule
    alert: Alert | None = None


@dataclass(slots=True)
class StreamState:
    mode: Mode
    threshold: float
    rules: list[RuleSeries]
    absences: list[Absence]
    last_seen: float
    labels: dict[str, str] = field(default_factory=dict)
    models: dict[str, ModelSeries] = field(default_factory=dict)
    events: int = 0
    #: Labels from people and the threshold adaptation (`decide.feedback`); None until the
    #: first label. A reload leaves it alone: the adaptation is an offset from `threshold`.
    feedback: StreamFeedback | None = None

    @property
    def thresholds(self) -> frozenset[str]:
        """Names of the stream's rules that people set as thresholds (not statistical)."""
        return frozenset(s.rule.name for s in self.rules if not s.statistical)

    @property
    def rules_page(self) -> bool:
        return self.mode != "model"

    @property
    def model_pages(self) -> bool:
        return self.mode in ("hybrid", "model")
