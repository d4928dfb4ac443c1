"""The alert life cycle: a table of cases, then properties over random point sequences
checked against a plain model of Prometheus' `for` / `keep_firing_for` semantics."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anomalyd.decide import INACTIVE, AlertState, Phase, Timing, Transition, advance

FIRED, RESOLVED = Transition.FIRED, Transition.RESOLVED


def run(
    points: Sequence[tuple[bool, float]], timing: Timing, state: AlertState = INACTIVE
) -> list[tuple[AlertState, Transition | None]]:
    steps = []
    for violated, ts in points:
        state, transition = advance(state, violated, ts, timing)
        steps.append((state, transition))
    return steps


def transitions(points: Sequence[tuple[bool, float]], timing: Timing) -> list[Transition | None]:
    return [t for _, t in run(points, timing)]


CASES = [
    pytest.param(
        Timing(),
        [(False, 0), (True, 1), (True, 2), (False, 3), (False, 4)],
        [None, FIRED, None, RESOLVED, None],
        id="for=0 fires at once and resolves at once",
    ),
    pytest.param(
        Timing(for_s=10),
        [(True, 0), (True, 5), (True, 9.999), (True, 10), (True, 20)],
        [None, None, None, FIRED, None],
        id="pending then fires after for",
    ),
    pytest.param(
        Timing(for_s=10),
        [(True, 0), (True, 15)],
        [None, FIRED],
        id="one later point is enough",
    ),
    pytest.param(
        Timing(for_s=10),
        [(True, 0), (True, 5), (False, 6), (True, 7), (True, 16), (True, 17)],
        [None, None, None, None, None, FIRED],
        id="a clear point during pending starts over",
    ),
    pytest.param(
        Timing(for_s=10),
        [(True, 0), (False, 20), (True, 30)],
        [None, None, None],
        id="pending cleared never fires",
    ),
    pytest.param(
        Timing(keep_firing_for_s=10),
        [(True, 0), (False, 1), (False, 5), (False, 10.999), (False, 11), (False, 12)],
        [FIRED, None, None, None, RESOLVED, None],
        id="keep_firing_for delays resolution",
    ),
    pytest.param(
        Timing(keep_firing_for_s=10),
        [(True, 0), (False, 1), (False, 8), (True, 9), (False, 12), (False, 21), (False, 22)],
        [FIRED, None, None, None, None, None, RESOLVED],
        id="a violation during clearing resets it",
    ),
    pytest.param(
        Timing(for_s=5, keep_firing_for_s=5),
        [(True, 0), (True, 5), (False, 6), (True, 7), (False, 8), (False, 13), (True, 14)],
        [None, FIRED, None, None, None, RESOLVED, None],
        id="both: fires, flaps without resolving, resolves, pending again",
    ),
    pytest.param(
        Timing(for_s=5),
        [(True, 0), (True, 5), (False, 6), (True, 7), (True, 12)],
        [None, FIRED, RESOLVED, None, FIRED],
        id="fires again after a resolution only after another for",
    ),
    pytest.param(
        Timing(),
        [(False, 0), (False, 1)],
        [None, None],
        id="never violated",
    ),
]


@pytest.mark.parametrize(("timing", "points", "expected"), CASES)
def test_cases(
    timing: Timing, points: list[tuple[bool, float]], expected: list[Transition | None]
) -> None:
    assert transitions(points, timing) == expected


def test_states_along_the_way() -> None:
    timing = Timing(for_s=10, keep_firing_for_s=5)
    states = [s for s, _ in run([(True, 3), (True, 13), (False, 14), (False, 19)], timing)]
    assert states == [
        AlertState(Phase.PENDING, since=3),
        AlertState(Phase.FIRING, since=3),
        AlertState(Phase.FIRING, since=3, clear_since=14),
        INACTIVE,
    ]


def test_starts_at_is_when_the_condition_began() -> None:
    (_, _), (state, transition) = run([(True, 100), (True, 160)], Timing(for_s=60))
    assert transition is FIRED
    assert state.since == 100


def test_resolving_returns_the_shared_inactive_state() -> None:
    (_, _), (state, transition) = run([(True, 0), (False, 1)], Timing())
    assert transition is RESOLVED
    assert state is INACTIVE


@pytest.mark.parametrize(
    ("state", "violated"),
    [
        (INACTIVE, False),
        (AlertState(Phase.PENDING, since=0), True),
        (AlertState(Phase.FIRING, since=0), True),
        (AlertState(Phase.FIRING, since=0, clear_since=1), False),
    ],
)
def test_nothing_changes_returns_the_same_object(state: AlertState, violated: bool) -> None:
    new, transition = advance(state, violated, 2.0, Timing(for_s=100, keep_firing_for_s=100))
    assert new is state
    assert transition is None


# --- properties ---------------------------------------------------------------------------------

_DURATIONS = st.one_of(st.just(0.0), st.floats(0.0, 50.0))
_TIMINGS = st.builds(Timing, for_s=_DURATIONS, keep_firing_for_s=_DURATIONS)


@st.composite
def _points(draw: st.DrawFn) -> list[tuple[bool, float]]:
    steps = draw(
        st.lists(
            st.tuples(st.booleans(), st.one_of(st.floats(0.001, 20.0), st.integers(1, 20))),
            max_size=60,
        )
    )
    ts, points = draw(st.floats(0, 1e9)), []
    for violated, dt in steps:
        ts += dt
        points.append((violated, ts))
    return points


def _model(points: Sequence[tuple[bool, float]], timing: Timing) -> list[Transition | None]:
    """Prometheus' semantics stated plainly: fire once the condition has held continuously
    for `for`; resolve once it has stayed clear continuously for `keep_firing_for`."""
    firing = False
    held_since: float | None = None  # first point of the current run of violations
    clear_since: float | None = None  # first point of the current run of clear points
    out: list[Transition | None] = []
    for violated, ts in points:
        transition = None
        if violated:
            clear_since = None
            held_since = ts if held_since is None else held_since
            if not firing and ts - held_since >= timing.for_s:
                firing, transition = True, FIRED
        else:
            held_since = None
            clear_since = ts if clear_since is None else clear_since
            if firing and ts - clear_since >= timing.keep_firing_for_s:
                firing, transition = False, RESOLVED
        out.append(transition)
    return out


@given(_points(), _TIMINGS)
def test_matches_the_model(points: list[tuple[bool, float]], timing: Timing) -> None:
    assert transitions(points, timing) == _model(points, timing)


@given(_points(), _TIMINGS)
def test_transitions_alternate_starting_with_fired(
    points: list[tuple[bool, float]], timing: Timing
) -> None:
    made = [t for t in transitions(points, timing) if t is not None]
    assert made == [FIRED, RESOLVED] * (len(made) // 2) + [FIRED] * (len(made) % 2)


@given(_points(), _TIMINGS)
def test_fired_only_after_holding_for(points: list[tuple[bool, float]], timing: Timing) -> None:
    for i, (state, transition) in enumerate(run(points, timing)):
        if transition is not FIRED:
            continue
        violated, ts = points[i]
        assert violated
        assert state.phase is Phase.FIRING
        # every point from startsAt to now was a violation, and it lasted at least `for`
        start = next(j for j in range(i + 1) if points[j][1] == state.since)
        assert all(v for v, _ in points[start : i + 1])
        assert start == 0 or not points[start - 1][0]
        assert ts - state.since >= timing.for_s


@given(_points(), _TIMINGS)
def test_resolved_only_after_clear_for(points: list[tuple[bool, float]], timing: Timing) -> None:
    for i, (state, transition) in enumerate(run(points, timing)):
        if transition is not RESOLVED:
            continue
        violated, ts = points[i]
        assert not violated
        assert state is INACTIVE
        last_violation = max(j for j in range(i) if points[j][0])
        first_clear = points[last_violation + 1][1]
        assert ts - first_clear >= timing.keep_firing_for_s


@given(_points(), _TIMINGS)
def test_unchanged_state_is_the_identical_object(
    points: list[tuple[bool, float]], timing: Timing
) -> None:
    state = INACTIVE
    for violated, ts in points:
        new, transition = advance(state, violated, ts, timing)
        if new == state:
            assert new is state
            assert transition is None
        state = new


@given(_points(), _TIMINGS)
def test_phase_agrees_with_transitions(points: list[tuple[bool, float]], timing: Timing) -> None:
    firing = False
    for state, transition in run(points, timing):
        if transition is FIRED:
            firing = True
        elif transition is RESOLVED:
            firing = False
        assert (state.phase is Phase.FIRING) == firing
        assert state.clear_since is None or state.phase is Phase.FIRING


def test_a_late_clear_point_from_before_the_alert_began_does_not_resolve_it() -> None:
    # A normal point stamped before the spike arrives after it (it came through another partition).
    firing, fired = advance(INACTIVE, True, 100.0, Timing())
    assert fired is FIRED
    state, transition = advance(firing, False, 99.0, Timing())
    assert (state, transition) == (firing, None)
    # A clear point from after the start still resolves it.
    assert advance(firing, False, 101.0, Timing()) == (INACTIVE, RESOLVED)


@given(st.floats(0.0, 1e6), st.floats(0.001, 1e6), _TIMINGS)
def test_clear_points_older_than_the_alert_never_resolve_it(
    since: float, age: float, timing: Timing
) -> None:
    firing = AlertState(Phase.FIRING, since=since)
    assert advance(firing, False, since - age, timing) == (firing, None)
