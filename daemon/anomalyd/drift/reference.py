"""What a field's windows are compared against, and how that reference moves.

- `previous`: the last window judged normal; `rolling`: the last N of them,
  pooled; `pinned`: one window for good: the window starting at
  `pinned_start`, or (none given, or it saw too few events of this stream) the
  stream's first *full* window (the stream was already sending when it began)
  with at least `min_count` events.
- previous and rolling learn only from windows judged normal: the windows of a
  suspicion are held back, so a step change is compared with the old regime
  until it is confirmed, not absorbed after one window. When an
  episode opens, the held-back windows become the reference (the new regime),
  and every window of the episode joins it, so the episode closes once the
  stream has settled. A pinned reference never moves: the episode lasts until
  the data comes back to it.

Memory: at most N windows (1 unless rolling) plus `confirm_windows - 1`
held-back windows, each a sorted sample of at most K doubles and its Stats.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from anomalyd.config.drift import ReferenceMode
from anomalyd.drift.episode import Status
from anomalyd.drift.rule import Judgement, Side
from anomalyd.drift.summary import pooled


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A closed window of one field, as a reference keeps it."""

    start: float
    side: Side
    full: bool  # the stream was already sending when the window began


@dataclass(frozen=True, slots=True)
class Reference:
    mode: ReferenceMode
    starts: tuple[float, ...]
    side: Side


class ReferenceHistory:
    """One field's reference windows."""

    __slots__ = ("_held", "_pinned_start", "_windows", "mode")

    def __init__(self, mode: ReferenceMode, rolling_windows: int, pinned_start: float | None):
        self.mode = mode
        self._pinned_start = pinned_start
        self._windows: deque[Snapshot] = deque(maxlen=rolling_windows if mode == "rolling" else 1)
        self._held: list[Snapshot] = []

    def view(self) -> Reference | None:
        # Pooled afresh for each window (a sort of N * K values), not kept: it would double
        # the memory of a rolling reference.
        return _pool(self.mode, list(self._windows)) if self._windows else None

    def learn(
        self, snapshot: Snapshot, judgement: Judgement, before: Status, after: Status
    ) -> None:
        """Take in a judged window with at least `min_count` events (the caller checks)."""
        if self.mode == "pinned":
            self._pin(snapshot)
        elif judgement is Judgement.NO_REFERENCE:
            self._keep([snapshot])
        elif after is Status.DRIFTING:
            opened = before is not Status.DRIFTING
            self._keep([*self._held, snapshot], replace=opened)
            self._held.clear()
        elif after is Status.SUSPECT:
            self._held.append(snapshot)
        elif after is Status.STABLE and judgement is Judgement.UNCHANGED:
            self._keep([snapshot])
            self._held.clear()

    def _pin(self, snapshot: Snapshot) -> None:
        if self._windows:
            return
        wanted = self._pinned_start
        chosen = wanted is not None and abs(snapshot.start - wanted) < 1e-6
        # No window chosen, or the chosen one is past and unseen: the first full window.
        fallback = (wanted is None or snapshot.start > wanted) and snapshot.full
        if chosen or fallback:
            self._keep([snapshot])

    def _keep(self, snapshots: list[Snapshot], replace: bool = False) -> None:
        if replace:
            self._windows.clear()
        self._windows.extend(snapshots)


def _pool(mode: ReferenceMode, windows: list[Snapshot]) -> Reference:
    starts = tuple(w.start for w in windows)
    if len(windows) == 1:
        return Reference(mode, starts, windows[0].side)
    sample = np.sort(np.concatenate([w.side.sample for w in windows]))
    stats = pooled([w.side.stats for w in windows], sample)
    return Reference(mode, starts, Side(stats, sample))
