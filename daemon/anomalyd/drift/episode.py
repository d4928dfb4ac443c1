"""Drift episodes: a pure state machine over a stream's sequence of window verdicts.

Hysteresis, so one odd window neither opens nor closes an episode:

- stable: a shifted window makes the stream *suspect*;
- suspect: `confirm_windows` shifted windows in a row open an episode (the
  stream is *drifting*); an unshifted window clears the suspicion;
- drifting: `stable_windows` unshifted windows in a row close the episode.

A window that could not be judged (too few events, no reference yet) neither
confirms nor breaks a streak. With `confirm_windows: 1` the first shifted
window opens the episode.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum


class Status(StrEnum):
    STABLE = "stable"
    SUSPECT = "suspect"
    DRIFTING = "drifting"


class Change(Enum):
    OPENED = "opened"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Episode:
    status: Status = Status.STABLE
    #: Suspect: shifted windows in a row. Drifting: unshifted windows in a row.
    streak: int = 0
    #: Start of the first shifted window of the suspicion or episode: the alert's startsAt.
    since: float | None = None


STABLE = Episode()


def step(
    episode: Episode,
    shifted: bool | None,
    start: float,
    confirm: int,
    stable: int,
    *,
    confirmable: bool = True,
) -> tuple[Episode, Change | None]:
    """The state after a window that started at `start` (`shifted` None: not judged).
    A shifted window that is not `confirmable` (its suspicion leans the same way, but
    its evidence is not clear yet) keeps the stream suspect without opening."""
    if shifted is None:
        return episode, None
    if episode.status is Status.DRIFTING:
        return _drifting(episode, shifted, stable)
    if not shifted:
        return STABLE, None
    streak = episode.streak + 1 if episode.status is Status.SUSPECT else 1
    since = episode.since if episode.status is Status.SUSPECT else start
    if streak >= confirm and confirmable:
        return Episode(Status.DRIFTING, 0, since), Change.OPENED
    return Episode(Status.SUSPECT, streak, since), None


def _drifting(episode: Episode, shifted: bool, stable: int) -> tuple[Episode, Change | None]:
    if shifted:
        return Episode(Status.DRIFTING, 0, episode.since), None
    if episode.streak + 1 >= stable:
        return STABLE, Change.CLOSED
    return Episode(Status.DRIFTING, episode.streak + 1, episode.since), None
