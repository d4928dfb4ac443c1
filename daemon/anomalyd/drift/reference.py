"""What a field's windows are compared against, and how that reference moves.

- `previous`: the last window judged normal; `rolling`: the last N of them,
  pooled; `pinned`: one window for good: the window starting at
  `pinned_start`, or (none given, or it saw too few events of this stream) the
  stream's first *full* window (the stream was already sending when it began)
  with at least `min_count` events.
- previous and rolling learn only from windows judged normal (and a first
  period's, learned, not judged: the monitor drops them if the field turns out
  seasonal): the windows of a suspicion are held back, so a step change is
  compared with the old regime until it is confirmed, not absorbed after one
  window (and the newest window of a rolling reference may leave it for the
  suspicion it began, `before`). When an episode opens, the held-back windows
  become the reference (the new regime), and every window of the episode joins
  it, so the episode closes once the stream has settled. A pinned reference
  never moves: the episode lasts until the data comes back to it.

A rolling reference keeps each of its N windows thinned to ceil(2K / N) values
(`sample.thin`: the window's quantile function at evenly spaced points, min and
max included), so the pool it compares with holds at most ~2K values (nearly all
of a slow stream's), and the significance tests count those values, not the ones
they summarise. Its count, mean, std, min and max still come from every event of
its windows (their Stats); its quantiles from the pool.

Memory: at most N windows (1 unless rolling) plus the held-back windows of a
suspicion (at most 3, kept whole: they are judged pooled), each its Stats (~0.3 KB)
and a sorted sample of at most K doubles, ceil(2K / N) if rolling: the N windows'
samples hold ~2K doubles in all (8 KB at K = 512).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anomalyd.config.drift import ReferenceMode
from anomalyd.drift.episode import Status
from anomalyd.drift.rule import Side, WindowJudgement
from anomalyd.drift.sample import thin, thinned_size
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


#: A rolling reference pools about this many windows' worth of values (K each): a
#: reference of many sparse windows then keeps nearly all their values.
POOL_WINDOWS = 2


class ReferenceHistory:
    """One field's reference windows."""

    # Tuples, not a deque and a list: a deque costs ~600 bytes however few it holds.
    __slots__ = ("_held", "_pinned_start", "_size", "_windows", "mode")

    def __init__(self, mode: ReferenceMode, rolling_windows: int, pinned_start: float | None):
        self.mode = mode
        self._pinned_start = pinned_start
        self._size = rolling_windows if mode == "rolling" else 1
        self._windows: tuple[Snapshot, ...] = ()
        self._held: tuple[Snapshot, ...] = ()

    @property
    def windows(self) -> tuple[Snapshot, ...]:
        return self._windows

    @property
    def held(self) -> tuple[Snapshot, ...]:
        return self._held

    def held_sides(self) -> tuple[Side, ...]:
        """The windows of the current suspicion, oldest first."""
        return tuple(w.side for w in self._held)

    def load(self, windows: tuple[Snapshot, ...], held: tuple[Snapshot, ...]) -> None:
        """Take back what a snapshot kept (`drift.state`)."""
        self._windows, self._held = windows[-self._size :], held

    def before(self, start: float, size: float) -> tuple[Snapshot, Reference] | None:
        """The window of `size` that ended at `start`, if it is the newest of a rolling
        reference, and the reference without it."""
        if self.mode != "rolling" or len(self._windows) < 2 or self._held:
            return None
        *rest, newest = self._windows
        if abs(newest.start + size - start) > 1e-6:
            return None
        return newest, _pool(self.mode, tuple(rest))

    def take_back(self) -> None:
        """The newest window leaves the reference for a suspicion (`before`)."""
        *rest, newest = self._windows
        self._windows, self._held = tuple(rest), (newest,)

    def release(self) -> None:
        """Drop the windows of a suspicion that ended unconfirmed."""
        self._held = ()

    def view(self) -> Reference | None:
        # Pooled afresh for each window (a sort of at most ~K values), not kept: it would
        # double the memory of a rolling reference.
        return _pool(self.mode, self._windows) if self._windows else None

    def learn(
        self,
        snapshot: Snapshot,
        judgement: WindowJudgement,
        before: Status,
        after: Status,
        sample_size: int,
    ) -> None:
        """Take in a judged window with at least `min_count` events (the caller checks);
        `sample_size` is K, what a window's sample holds at most."""
        # Held-back windows keep their whole sample: a suspicion is judged on them pooled
        # (`held_sides`); they are thinned once they join the reference.
        size = thinned_size(POOL_WINDOWS * sample_size, self._size)
        held = tuple(self._thinned(w, size) for w in self._held)
        whole, snapshot = snapshot, self._thinned(snapshot, size)
        if self.mode == "pinned":
            self._pin(snapshot)
        elif judgement in (WindowJudgement.NO_REFERENCE, WindowJudgement.LEARNING):
            self._keep([snapshot])
        elif after is Status.DRIFTING:
            opened = before is not Status.DRIFTING
            self._keep([*held, snapshot], replace=opened)
            self._held = ()
        elif after is Status.SUSPECT:
            self._held = (*self._held, whole)
        elif after is Status.STABLE and judgement is WindowJudgement.UNCHANGED:
            self._keep([snapshot])
            self._held = ()

    def _thinned(self, snapshot: Snapshot, size: int) -> Snapshot:
        sample = snapshot.side.sample
        kept = thin(sample, size)
        if kept is sample:
            return snapshot
        return Snapshot(snapshot.start, Side(snapshot.side.stats, kept), snapshot.full)

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
        kept = (*snapshots,) if replace else (*self._windows, *snapshots)
        self._windows = kept[-self._size :]


def _pool(mode: ReferenceMode, windows: tuple[Snapshot, ...]) -> Reference:
    starts = tuple(w.start for w in windows)
    if len(windows) == 1:
        return Reference(mode, starts, windows[0].side)
    # Thinned windows: the pool has at most N * ceil(K / N) values, and the KS p-value
    # counts those (an honest size: a thinned window is not K independent draws).
    sample = np.sort(np.concatenate([w.side.sample for w in windows]))
    stats = pooled([w.side.stats for w in windows], sample)
    return Reference(mode, starts, Side(stats, sample))
