"""The firing/resolved life cycle of one alert, as a pure function of (state, point).

Prometheus semantics users already know: a condition must hold for `for`
seconds before the alert fires (pending until then), and must stay clear for
`keep_firing_for` seconds before it resolves, so a noisy series does not flap.
Times are event times, so a backtest makes the same decisions as the worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Phase(Enum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


class Transition(Enum):
    FIRED = "fired"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Timing:
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0


@dataclass(frozen=True, slots=True)
class AlertState:
    phase: Phase
    since: float = 0.0  # when the condition began: the alert's startsAt
    clear_since: float | None = None  # while firing: when the condition last went clear


INACTIVE = AlertState(Phase.INACTIVE)


def advance(
    state: AlertState, violated: bool, ts: float, timing: Timing
) -> tuple[AlertState, Transition | None]:
    """The next state and the transition it makes, if any.

    Returns the same state object when nothing changes, so the hot path allocates nothing.
    """
    if violated:
        return _on_violation(state, ts, timing)
    return _on_clear(state, ts, timing)


def _on_violation(
    state: AlertState, ts: float, timing: Timing
) -> tuple[AlertState, Transition | None]:
    if state.phase is Phase.INACTIVE:
        if timing.for_s <= 0.0:
            return AlertState(Phase.FIRING, since=ts), Transition.FIRED
        return AlertState(Phase.PENDING, since=ts), None
    if state.phase is Phase.PENDING:
        if ts - state.since >= timing.for_s:
            return AlertState(Phase.FIRING, since=state.since), Transition.FIRED
        return state, None
    if state.clear_since is not None:  # came back before it could resolve
        return AlertState(Phase.FIRING, since=state.since), None
    return state, None


def _on_clear(state: AlertState, ts: float, timing: Timing) -> tuple[AlertState, Transition | None]:
    if state.phase is Phase.INACTIVE:
        return state, None
    if state.phase is Phase.PENDING:
        return INACTIVE, None
    if ts < state.since:
        # A normal point from before the alert began arrived late (another partition):
        # it is stale evidence and cannot end the alert.
        return state, None
    clear_since = ts if state.clear_since is None else state.clear_since
    if ts - clear_since >= timing.keep_firing_for_s:
        return INACTIVE, Transition.RESOLVED
    if state.clear_since is None:
        return AlertState(Phase.FIRING, since=state.since, clear_since=clear_since), None
    return state, None
