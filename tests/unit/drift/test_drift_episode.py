"""Drift episodes: confirmation and hysteresis as a table of window verdicts."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anomalyd.drift import Change, Episode, Status, step
from anomalyd.drift.episode import STABLE

S, U, N = True, False, None  # shifted, unchanged, not judged


def run(verdicts: Sequence[bool | None], confirm: int = 2, stable: int = 3) -> list[str]:
    """The status after each window, with the change it made ('+' opened, '-' closed)."""
    episode, out = STABLE, []
    for i, shifted in enumerate(verdicts):
        episode, change = step(episode, shifted, float(i), confirm, stable)
        mark = {Change.OPENED: "+", Change.CLOSED: "-", None: ""}[change]
        out.append(episode.status.value[0] + mark)
    return out


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ([U, U, U], ["s", "s", "s"]),
        ([S, U, S, U], ["s", "s", "s", "s"]),  # lone shifted windows never open
        ([S, S], ["s", "d+"]),
        ([S, N, S], ["s", "s", "d+"]),  # an unjudged window neither breaks nor confirms
        ([S, S, U, U, U], ["s", "d+", "d", "d", "s-"]),
        ([S, S, U, U, S, U, U, U], ["s", "d+", "d", "d", "d", "d", "d", "s-"]),  # hysteresis
        ([S, S, N, U, N, U, U], ["s", "d+", "d", "d", "d", "d", "s-"]),
    ],
)
def test_confirmation_and_hysteresis(verdicts: list[bool | None], expected: list[str]) -> None:
    assert run(verdicts) == expected


def test_confirm_one_opens_on_the_first_shifted_window() -> None:
    assert run([S, U], confirm=1, stable=1) == ["d+", "s-"]


def test_since_is_the_first_shifted_window() -> None:
    episode = STABLE
    for i, shifted in enumerate([U, S, S, S]):
        episode, _ = step(episode, shifted, 100.0 * i, 2, 3)
    assert episode == Episode(Status.DRIFTING, 0, since=100.0)


@given(st.lists(st.sampled_from([S, U, N]), max_size=60), st.integers(1, 4), st.integers(1, 4))
def test_opens_and_closes_alternate(verdicts: list[bool | None], confirm: int, stable: int) -> None:
    changes = [c for c in run(verdicts, confirm, stable) if c[-1] in "+-"]
    assert all(c.endswith("+") for c in changes[0::2])
    assert all(c.endswith("-") for c in changes[1::2])
