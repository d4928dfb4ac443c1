"""The drift monitor: per stream and field, window statistics, a verdict per window
against the reference, drift episodes and their alerts.

Plain Python with no I/O and no clock: the worker feeds it events and arrival
times from Kafka, `backtest` feeds it a file, and both get the same records and
alerts. Windows close only when told:

- `close_due(watermark, stream)`: event time (normally the stream's latest
  `ts`, after each event or batch);
- `close_idle(now)`: on a timer, so a silent stream's last window still closes:
  its watermark moves on by the processing time elapsed since its last event;
- `flush()`: end of input.

Memory per tracked stream and field: the reference, N windows' statistics
(~0.5 KB each) and ~K doubles of samples in all (a rolling reference thins each
window to ceil(K / N) values, see `reference`), as much again at most for the
windows held back during a suspicion, 1 or 2 open windows (a sample of at most K
doubles each, growing with the events), and two River ADWINs (~0.5 KB new, ~2.5 KB
after a few thousand points; the one over model scores is made at the first
score), and a seasonal field's profile (~0.6 KB, `seasonal`). Measured with K = 512
and rolling N = 4, before auto windows, for the whole pipeline (`bench_memory`):
~22 KB a stream at 300 events a window, ~5 KB of it the ADWINs and ~3 KB the engine.
At most `max_fields` fields per stream, `max_streams` streams.

Windows are sized per stream from its rate (`sizing`) unless the config pins a size;
a field's first seasonal period is learned, then judged with its cycle taken out if
it has one (`seasonal`). The whole state of a stream is plain data (`state`), saved
with the stream's snapshot.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from functools import lru_cache

from anomalyd import alert as alerts
from anomalyd.config.drift import DriftSection
from anomalyd.domain import Alert, Event, format_time
from anomalyd.drift import alerts as drift_alerts
from anomalyd.drift import sizing
from anomalyd.drift.change import DriftDetector, make_drift_detector
from anomalyd.drift.episode import STABLE, Change, Episode, Status, step
from anomalyd.drift.record import ClosedBy, ReferenceSummary, StreamCounts, WindowRecord
from anomalyd.drift.reference import Reference, ReferenceHistory, Snapshot
from anomalyd.drift.rule import (
    Comparison,
    Side,
    WindowJudgement,
    compare,
    leans,
    pooled_side,
    with_significance,
)
from anomalyd.drift.sample import window_seed
from anomalyd.drift.seasonal import Profile
from anomalyd.drift.summary import Summary
from anomalyd.drift.windows import OpenWindows, window_start

#: Windows a suspicion may pool before it is dropped as not clear (its windows are
#: held back at full size meanwhile).
MAX_SUSPICION = 4


@dataclass(frozen=True, slots=True)
class DriftUpdate:
    """What closing windows produced: a record per field and window, and alert changes."""

    records: list[WindowRecord] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.records or self.alerts)


#: What closing nothing produced, shared (`close_due` after nearly every event): not to
#: be added to.
NOTHING = DriftUpdate()


@dataclass(slots=True)
class _FieldWindow:
    summary: Summary
    score_sum: float = 0.0
    scored: int = 0
    change: bool = False
    score_change: bool = False


@dataclass(slots=True)
class _Window:
    start: float
    fields: dict[str, _FieldWindow] = field(default_factory=dict)
    events: int = 0
    invalid: int = 0
    alerts: int = 0


@dataclass(slots=True)
class _Field:
    values: DriftDetector
    reference: ReferenceHistory
    #: Made at the first model score: a field the model never scores (or not yet, in
    #: its warmup) does without (an ADWIN costs 0.5 KB empty, 2.5 KB after 1,500 points).
    scores: DriftDetector | None = None
    #: The cycle being learned (seasonal None) or taken out (True); None if not seasonal.
    profile: Profile | None = None
    seasonal: bool | None = False
    #: The field's first value: its first seasonal period ends a period after it.
    first_ts: float = 0.0
    #: Windows starting before this are learning, not judged (the first period).
    judge_from: float = -math.inf


#: A value held back while a new stream's window is sized: ts, values, model scores.
Pending = tuple[float, dict[str, float], dict[str, float | None] | None]


@dataclass(slots=True)
class DriftState:
    """Everything the monitor knows about one stream. In memory only (the worker does not
    save it): a restart or a rebalance starts the stream's drift windows afresh."""

    #: None while the stream's window is being sized (`drift.sizing`).
    windows: OpenWindows[_Window] | None
    first_ts: float
    max_ts: float
    last_arrival: float
    pending: list[Pending] = field(default_factory=list)
    sparse: bool = False
    #: Shifted windows in a row that open an episode (`confirm_windows`, `confirm_for`).
    confirm: int = 2
    closed: int = 0  # windows closed
    judged: int = 0  # ... of which at least one field was compared with its reference
    fields: dict[str, _Field] = field(default_factory=dict)
    episode: Episode = STABLE
    alert: Alert | None = None  # the firing drift alert, kept to resolve it
    labels: Mapping[str, str] = field(default_factory=dict)
    late: int = 0  # late reports since the last closed window
    latest: tuple[WindowRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class _Judged:
    field: str
    window: _FieldWindow
    side: Side
    judgement: WindowJudgement
    comparison: Comparison | None
    reference: Reference | None


class DriftMonitor:
    """Drift statistics, verdicts and episodes for the streams this worker owns."""

    def __init__(
        self, config: DriftSection, external_url: str, *, config_version: str | None = None
    ) -> None:
        """`config_version`, if given, is the `config_version` annotation of its alerts."""
        self._config = config
        self._external_url = external_url
        self._version = config_version
        self._globs = tuple(config.streams)
        self._streams: dict[str, DriftState] = {}
        #: Reports dropped because their window had closed (also in each record's `late`).
        self.late_events = 0
        #: Events not tracked: beyond `max_streams`, or fields beyond `max_fields`.
        self.untracked_events = 0

    # --- what the caller reports ----------------------------------------------------------------

    def observe(
        self, event: Event, now: float, scores: Mapping[str, float | None] | None = None
    ) -> None:
        """Add a valid event (arrived at `now`) and, per field, its model score if any."""
        # Every event comes through here: plain comparisons and one lookup per step.
        stream, ts = event.stream, event.ts
        state = self._streams.get(stream) or self._state(stream, ts, now)
        if state is None:
            return
        if ts > state.max_ts:
            state.max_ts = ts
        elif ts < state.first_ts:
            state.first_ts = ts
        state.last_arrival = now
        state.labels = event.labels
        if state.windows is None:
            state.pending.append((ts, dict(event.values), None if scores is None else dict(scores)))
            if sizing.ready(len(state.pending), state.max_ts - state.first_ts, self._config):
                self._size(stream, state)
            return
        self._observe(stream, state, ts, event.values, scores)

    def _observe(
        self,
        stream: str,
        state: DriftState,
        ts: float,
        values: Mapping[str, float],
        scores: Mapping[str, float | None] | None,
    ) -> None:
        window = self._window(stream, state, ts)
        if window is None:  # late (counted)
            return
        window.events += 1
        for name, value in values.items():
            score = scores.get(name) if scores is not None else None
            self._add(stream, state, window, ts, name, value, score)

    def _size(self, stream: str, state: DriftState) -> None:
        """Give the stream its window, from the rate of its held-back events, and replay
        them into it."""
        config = self._config
        pending, state.pending = state.pending, []
        size = sizing.choose(len(pending), state.max_ts - state.first_ts, config)
        state.windows = OpenWindows(size.seconds, config.grace)
        state.sparse = size.sparse
        state.confirm = max(config.confirm_windows, math.ceil(config.confirm_for / size.seconds))
        for ts, values, scores in pending:
            self._observe(stream, state, ts, values, scores)

    def record_invalid(self, stream: str, ts: float, now: float) -> None:
        """Count an invalid event of `stream` (at event or broker time `ts`)."""
        state = self._state(stream, ts, now)
        window = self._window(stream, state, ts) if state is not None else None
        if window is not None:
            window.invalid += 1

    def record_alert(self, stream: str, ts: float, now: float) -> None:
        """Count an alert that fired on `stream` for the event at `ts`."""
        state = self._state(stream, ts, now)
        window = self._window(stream, state, ts) if state is not None else None
        if window is not None:
            window.alerts += 1

    # --- closing windows ------------------------------------------------------------------------

    def close_due(self, watermark: float, stream: str | None = None) -> DriftUpdate:
        """Close the windows of `stream` (every stream if None) that `watermark` is past."""
        if stream is not None:  # after every event: nearly always nothing to close
            state = self._streams.get(stream)
            windows = state.windows if state is not None else None
            closed = windows.close_due(watermark) if windows is not None else None
            if not closed:
                return NOTHING
            assert state is not None  # it has windows
            update = DriftUpdate()
            self._close(stream, state, closed, update, closed_by="watermark")
            return update
        update = DriftUpdate()
        for name in list(self._streams):
            state = self._streams.get(name)
            if state is not None and state.windows is not None:
                closed = state.windows.close_due(watermark)
                if closed:
                    self._close(name, state, closed, update, closed_by="watermark")
        return update

    def close_idle(self, now: float) -> DriftUpdate:
        """Close the windows of silent streams, letting processing time stand in for
        event time from each stream's last arrival."""
        update = DriftUpdate()
        for name, state in self._streams.items():
            idle = max(0.0, now - state.last_arrival)
            if (
                state.windows is None
                and state.max_ts + idle - state.first_ts >= self._config.max_window
            ):
                self._size(name, state)  # too slow to wait for more events
            if state.windows is not None:
                watermark = state.max_ts + idle
                self._close(name, state, state.windows.close_due(watermark), update)
        return update

    def flush(self) -> DriftUpdate:
        """Close every open window (end of input)."""
        update = DriftUpdate()
        for name, state in self._streams.items():
            if state.windows is None:
                self._size(name, state)
            assert state.windows is not None  # just sized
            self._close(name, state, state.windows.close_all(), update, closed_by="flush")
        return update

    # --- a new config ---------------------------------------------------------------------------

    def reconfigure(
        self, config: DriftSection, *, now: float, config_version: str | None = None
    ) -> list[Alert]:
        """Adopt a new drift config; returns the drift alerts it resolves (ended at `now`).

        Thresholds, `min_count`, `confirm_windows`, `stable_windows`, `psi_bins` and the
        limits apply from the next window closed; `grace` at once; `sample_size` and `seed`
        to windows opened from now. Each stream keeps its windows, references and episode
        unless the windows or the reference change shape (`window`, `reference`,
        `rolling_windows`, `pinned_start`, `change_detector`): then every stream starts
        afresh, as at first sight. A stream no longer matching `streams` is dropped. A
        firing alert of a stream dropped or started afresh, or whose `alertname` or
        `severity` changed, is resolved (the episode goes on, silently, if kept).
        """
        old, self._config = self._config, config
        self._globs, self._version = tuple(config.streams), config_version
        reset = restarts_streams(old, config)
        renamed = (config.alertname, config.severity) != (old.alertname, old.severity)
        ended = []
        for name, state in list(self._streams.items()):
            drop = reset or not _matches(name, self._globs)
            if state.alert is not None and (drop or renamed):
                ended.append(self._resolved(state.alert, now))
                state.alert = None
            if drop:
                del self._streams[name]
            elif state.windows is not None:
                state.windows.grace = config.grace
        return ended

    def resolve_all(self, now: float, *, config_version: str | None = None) -> list[Alert]:
        """Resolve every firing drift alert: drift monitoring is being turned off by the
        config of `config_version`."""
        self._version = config_version
        ended = []
        for state in self._streams.values():
            if state.alert is not None:
                ended.append(self._resolved(state.alert, now))
                state.alert = None
        return ended

    def _resolved(self, alert: Alert, now: float) -> Alert:
        ended = alerts.resolved(alert, ends_at=max(now, alert.starts_at))
        return alerts.with_version(ended, self._version)

    # --- what the rest of the daemon asks -------------------------------------------------------

    def is_drifting(self, stream: str) -> bool:
        """Inside a confirmed drift episode: the model's view of normal may be stale."""
        state = self._streams.get(stream)
        return state is not None and state.episode.status is Status.DRIFTING

    def status(self, stream: str) -> Status | None:
        state = self._streams.get(stream)
        return state.episode.status if state is not None else None

    def latest(self) -> dict[str, tuple[WindowRecord, ...]]:
        """Each stream's records of its most recently closed window (for /api/drift)."""
        return {name: state.latest for name, state in self._streams.items() if state.latest}

    def coverage(self) -> dict[str, dict[str, object]]:
        """Per stream: its window (None while sized), whether it is too sparse to be
        judged often, and how many of its closed windows were judged."""
        return {
            name: {
                "window": None if state.windows is None else state.windows.size,
                "sparse": state.sparse,
                "windows_closed": state.closed,
                "windows_judged": state.judged,
            }
            for name, state in self._streams.items()
        }

    def sparse_streams(self) -> int:
        return sum(state.sparse for state in self._streams.values())

    def streams(self) -> list[str]:
        return list(self._streams)

    def forget(self, streams: Iterable[str]) -> None:
        """Drop streams this worker no longer owns (after a rebalance)."""
        for name in streams:
            self._streams.pop(name, None)

    @property
    def config(self) -> DriftSection:
        return self._config

    def state(self, stream: str) -> DriftState | None:
        return self._streams.get(stream)

    def restore(self, stream: str, state: DriftState) -> None:
        """Adopt a stream's state taken from another monitor (`state`)."""
        self._streams[stream] = state

    # --- internals ------------------------------------------------------------------------------

    def _state(self, stream: str, ts: float, now: float) -> DriftState | None:
        state = self._streams.get(stream)
        if state is not None:
            return state
        if not _matches(stream, self._globs) or len(self._streams) >= self._config.max_streams:
            self.untracked_events += 1
            return None
        state = DriftState(None, ts, ts, now)
        if self._config.window is not None:  # pinned: nothing to size
            self._size(stream, state)
        self._streams[stream] = state
        return state

    def _window(self, stream: str, state: DriftState, ts: float) -> _Window | None:
        if state.windows is None:  # still sizing: not counted
            return None
        window = state.windows.get(ts, _Window)
        if window is None:
            state.late += 1
            self.late_events += 1
        return window

    def _add(
        self,
        stream: str,
        state: DriftState,
        window: _Window,
        ts: float,
        name: str,
        value: float,
        score: float | None,
    ) -> None:
        tracked = state.fields.get(name) or self._new_field(state, name, ts)
        if tracked is None:
            self.untracked_events += 1
            return
        slot = window.fields.get(name)
        if slot is None:
            seed = window_seed(self._config.seed, stream, name, window.start)
            slot = window.fields[name] = _FieldWindow(Summary(self._config.sample_size, seed))
        profile = tracked.profile
        slot.summary.add(
            value if profile is None else self._judged_value(state, tracked, ts, value)
        )
        detector = tracked.values
        detector.update(value)
        if detector.drift_detected:
            slot.change = True
        if score is not None:
            slot.score_sum += score
            slot.scored += 1
            scores = tracked.scores
            if scores is None:
                scores = tracked.scores = make_drift_detector(self._config.change_detector)
            scores.update(score)
            if scores.drift_detected:
                slot.score_change = True

    def _new_field(self, state: DriftState, name: str, ts: float) -> _Field | None:
        config = self._config
        if len(state.fields) >= config.max_fields:
            return None
        tracked = state.fields[name] = _Field(
            values=make_drift_detector(config.change_detector), reference=self._new_reference()
        )
        seasonality = config.seasonality
        if seasonality.detect:
            tracked.profile = Profile.empty(seasonality.period, seasonality.bins)
            tracked.seasonal = None
            tracked.first_ts = ts
            tracked.judge_from = math.inf
        return tracked

    def _new_reference(self) -> ReferenceHistory:
        config = self._config
        return ReferenceHistory(config.reference, config.rolling_windows, config.pinned_start_ts)

    def _judged_value(self, state: DriftState, tracked: _Field, ts: float, value: float) -> float:
        """The value the window judges: less the field's cycle if it has one. The first
        period's values teach the profile, then decide whether there is a cycle."""
        profile = tracked.profile
        if profile is None:
            return value
        if tracked.seasonal is None and ts >= tracked.first_ts + profile.period:
            self._decide(state, tracked, profile, ts)
            profile = tracked.profile
            if profile is None:
                return value
        judged = value - profile.expected(ts) if tracked.seasonal else value
        profile.add(ts, value)
        return judged

    def _decide(self, state: DriftState, tracked: _Field, profile: Profile, ts: float) -> None:
        """End of the first period: seasonal or not. Windows from the next one on are
        judged, against a reference of the same kind of values: a field with no cycle
        keeps its first period's windows as its reference (a reference of one window
        is a young one: one 6-hour window drawn narrow opened a false episode), a
        seasonal one starts afresh on its residuals."""
        assert state.windows is not None  # values come only into sized streams
        tracked.seasonal = profile.strength() >= self._config.seasonality.min_strength
        if tracked.seasonal:
            profile.settle()
            tracked.reference = self._new_reference()
        else:
            tracked.profile = None
        size = state.windows.size
        tracked.judge_from = window_start(ts, size) + size

    def _close(
        self,
        stream: str,
        state: DriftState,
        closed: list[tuple[float, _Window]],
        update: DriftUpdate,
        closed_by: ClosedBy | None = None,
    ) -> None:
        for start, window in closed:
            by = closed_by or self._closed_by(state, start)
            records, alert = self._judge_window(stream, state, window, by)
            state.latest = tuple(records)
            update.records.extend(records)
            if alert is not None:
                update.alerts.append(alert)

    def _closed_by(self, state: DriftState, start: float) -> ClosedBy:
        assert state.windows is not None  # a closed window was open
        due = start + state.windows.size + self._config.grace
        return "watermark" if state.max_ts >= due else "idle"

    def _judge_window(
        self, stream: str, state: DriftState, window: _Window, closed_by: ClosedBy
    ) -> tuple[list[WindowRecord], Alert | None]:
        config = self._config
        judged = self._judge_fields(state, window)
        before, verdict = state.episode, _verdict(judged)
        state.closed += 1
        state.judged += verdict is not None
        confirmable = not any(j.judgement is WindowJudgement.LEANING for j in judged) or any(
            j.judgement is WindowJudgement.SHIFTED for j in judged
        )
        state.episode, change = step(
            before,
            verdict,
            window.start,
            state.confirm,
            config.stable_windows,
            confirmable=confirmable,
        )
        self._learn(state, window.start, judged, before.status)
        # The record that closes an episode still names it; the next one does not.
        since = before.since if change is Change.CLOSED else state.episode.since
        drifting = state.episode.status is Status.DRIFTING or change is not None
        episode = _episode_id(stream, since) if drifting and since is not None else None
        counts = StreamCounts(window.events, window.invalid, window.alerts, state.late)
        state.late = 0
        records = self._records(stream, state, window, judged, counts, closed_by, episode)
        return records, self._alert(state, records, change, since, window.start)

    def _judge_fields(self, state: DriftState, window: _Window) -> list[_Judged]:
        """Each field's judgement of the window. A window that does not carry a suspicion
        on ends it, then is judged as a stable stream's window is, so it may start the
        next one: a changed daily cycle turns its residuals' sign between two 6-hour
        windows, and each sign would otherwise only end the suspicion the other started."""
        judged = [
            self._judge_field(state, name, slot, window.start)
            for name, slot in window.fields.items()
        ]
        verdict = _verdict(judged)
        if state.episode.status is Status.SUSPECT and verdict is False:
            for tracked in state.fields.values():
                tracked.reference.release()
            state.episode = STABLE
            return self._judge_fields(state, window)
        if state.episode.status is Status.STABLE and verdict and state.confirm > 1:
            return self._look_back(state, window, judged)
        return judged

    def _look_back(
        self, state: DriftState, window: _Window, judged: list[_Judged]
    ) -> list[_Judged]:
        """A window that makes its stream suspect, where a field's previous window (the
        newest of its reference) leans the same way: a change seldom starts at a window's
        edge, and the window it started in holds part of it. That window leaves the
        reference and starts the suspicion, judged on both windows pooled at once."""
        assert state.windows is not None  # a closed window was open
        config, out, since = self._config, list(judged), None
        for i, item in enumerate(judged):
            if item.judgement is not WindowJudgement.SHIFTED or item.comparison is None:
                continue
            history = state.fields[item.field].reference
            found = history.before(window.start, state.windows.size)
            if found is None:
                continue
            previous, rest = found
            if not leans(
                previous.side, rest.side, item.comparison, config.thresholds, config.psi_bins
            ):
                continue
            pooled = self._judge_suspicion(
                item.field, item.window, item.side, (previous.side,), rest, bridges=False
            )
            if pooled.judgement is WindowJudgement.UNCHANGED:
                continue
            history.take_back()
            out[i], since = pooled, previous.start
        if since is not None:
            state.episode = Episode(Status.SUSPECT, 1, since)
        return out

    def _learn(
        self, state: DriftState, start: float, judged: list[_Judged], before: Status
    ) -> None:
        """Offer each field's window to its reference, after it was judged against it (a
        first period's window unjudged, unless its field is seasonal: its raw values are
        not the residuals the field is judged on)."""
        full = state.first_ts <= start
        for item in judged:
            tracked = state.fields[item.field]
            if item.judgement is WindowJudgement.LEARNING and tracked.seasonal:
                continue
            if item.side.stats.count >= self._config.min_count:
                tracked.reference.learn(
                    Snapshot(start, item.side, full),
                    item.judgement,
                    before,
                    state.episode.status,
                    self._config.sample_size,
                )

    def _judge_field(
        self, state: DriftState, name: str, slot: _FieldWindow, start: float
    ) -> _Judged:
        config = self._config
        sample = slot.summary.sample.sorted()
        side = Side(slot.summary.stats(sample), sample)
        tracked = state.fields[name]
        if start < tracked.judge_from:
            return _Judged(name, slot, side, WindowJudgement.LEARNING, None, None)
        reference = tracked.reference.view()
        if side.stats.count < config.min_count:
            return _Judged(name, slot, side, WindowJudgement.TOO_FEW_EVENTS, None, reference)
        if reference is None:
            return _Judged(name, slot, side, WindowJudgement.NO_REFERENCE, None, None)
        held = tracked.reference.held_sides()
        if state.episode.status is Status.SUSPECT and held:
            assert state.windows is not None  # a closed window was open
            bridges = _bridges_quiet_windows(tracked, state.windows.size)
            return self._judge_suspicion(name, slot, side, held, reference, bridges)
        # With confirmation to come, a window need only be suspect on its own.
        thresholds = config.thresholds
        if state.confirm > 1:
            thresholds = with_significance(thresholds, thresholds.suspect_significance)
        comparison = compare(side, reference.side, thresholds, config.psi_bins)
        judgement = WindowJudgement.SHIFTED if comparison.shifted else WindowJudgement.UNCHANGED
        return _Judged(name, slot, side, judgement, comparison, reference)

    def _judge_suspicion(
        self,
        name: str,
        slot: _FieldWindow,
        side: Side,
        held: tuple[Side, ...],
        reference: Reference,
        bridges: bool,
    ) -> _Judged:
        """A later window of a suspicion: the suspicion's windows pooled (more events
        than one window holds), and the window itself leaning the same way (or, where a
        quiet window may sit between two of a changed cycle, `bridges`, the pool clear)."""
        config = self._config
        pool = pooled_side([*held, side])
        loose = with_significance(config.thresholds, config.thresholds.suspect_significance)
        pooled = compare(pool, reference.side, config.thresholds, config.psi_bins)
        if leans(side, reference.side, pooled, config.thresholds, config.psi_bins):
            judgement = WindowJudgement.SHIFTED
        elif len(held) + 1 < MAX_SUSPICION and (
            (bridges and pooled.shifted)
            or leans(
                side,
                reference.side,
                compare(pool, reference.side, loose, config.psi_bins),
                loose,
                config.psi_bins,
            )
        ):
            judgement = WindowJudgement.LEANING  # more windows may make it clear
        else:
            judgement = WindowJudgement.UNCHANGED
        comparison = replace(pooled, pooled=len(held) + 1)
        return _Judged(name, slot, side, judgement, comparison, reference)

    def _records(
        self,
        stream: str,
        state: DriftState,
        window: _Window,
        judged: list[_Judged],
        counts: StreamCounts,
        closed_by: ClosedBy,
        episode: str | None,
    ) -> list[WindowRecord]:
        assert state.windows is not None  # a closed window was open
        header = WindowRecord(
            stream=stream,
            start=window.start,
            end=window.start + state.windows.size,
            closed_by=closed_by,
            counts=counts,
            status=state.episode.status,
            episode=episode,
            sparse=state.sparse,
        )
        if not judged:  # only invalid events (or alerts) in this window
            return [header]
        return [_with_field(header, item, state.fields[item.field].seasonal) for item in judged]

    def _alert(
        self,
        state: DriftState,
        records: list[WindowRecord],
        change: Change | None,
        since: float | None,
        start: float,
    ) -> Alert | None:
        if change is Change.OPENED and since is not None:
            fired = drift_alerts.episode_alert(
                records, state.labels, since, self._config, self._external_url
            )
            state.alert = alerts.with_version(fired, self._version)
            return state.alert
        if change is Change.CLOSED and state.alert is not None:
            assert state.windows is not None  # a closed window was open
            ended = drift_alerts.episode_resolved(state.alert, start + state.windows.size)
            state.alert = None
            return alerts.with_version(ended, self._version)
        return None


def _with_field(header: WindowRecord, item: _Judged, seasonal: bool | None) -> WindowRecord:
    slot, reference = item.window, item.reference
    return replace(
        header,
        seasonal=None if item.judgement is WindowJudgement.LEARNING else seasonal,
        field=item.field,
        stats=item.side.stats,
        score_mean=slot.score_sum / slot.scored if slot.scored else None,
        scored=slot.scored,
        reference=(
            ReferenceSummary(reference.mode, reference.starts, reference.side.stats)
            if reference is not None
            else None
        ),
        judgement=item.judgement,
        comparison=item.comparison,
        change_detected=slot.change,
        score_change_detected=slot.score_change,
    )


def restarts_streams(old: DriftSection, new: DriftSection) -> bool:
    """Whether moving from `old` to `new` starts every stream's drift state afresh: the
    settings its windows and references are built with changed."""
    return shape(old) != shape(new)


def shape(config: DriftSection) -> tuple[object, ...]:
    return (
        config.window,
        config.target_events,
        config.min_window,
        config.max_window,
        config.seasonality,
        config.reference,
        config.rolling_windows,
        config.pinned_start,
        config.change_detector,
    )


def _bridges_quiet_windows(tracked: _Field, size: float) -> bool:
    """Whether a window of this field that does not lean may still carry its suspicion
    on (as leaning, while the pool stays clear): on a seasonal field whose windows span
    a quarter of its period or more. A changed cycle's residuals then go strong, quiet,
    strong the other way, quiet (6-hour windows of a daily cycle: no two alike in a
    row); shorter windows see runs of one sign, and a burst of noise is not bridged."""
    profile = tracked.profile
    return bool(tracked.seasonal) and profile is not None and size >= profile.period / 4.0


def _verdict(judged: list[_Judged]) -> bool | None:
    """The stream's window: shifted if any field is, None if no field could be judged."""
    verdicts = [j.judgement for j in judged if j.comparison is not None]
    if not verdicts:
        return None
    return WindowJudgement.SHIFTED in verdicts or WindowJudgement.LEANING in verdicts


def _episode_id(stream: str, since: float) -> str:
    """Stable across replays: the stream and the start of the episode's first window."""
    return f"{stream}@{format_time(since)}"


@lru_cache(maxsize=4096)
def _matches(stream: str, globs: tuple[str, ...]) -> bool:
    return any(fnmatchcase(stream, glob) for glob in globs)
