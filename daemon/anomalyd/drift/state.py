"""A stream's drift state as plain values and back, for the stream's snapshot.

Saved with the rest of the stream's state (`Pipeline.snapshot`), so a restart or a
rebalance resumes the stream's open windows, its references, its seasonal profiles
and its episode (with the alert it fired, to resolve it). Read back as data, never
run (`anomalyd.plain`), and checked: a value of the wrong type or size raises
StateError, and the caller starts the stream's drift afresh.

Not kept: the River change detectors (reported only; they start again), a full
reservoir's generator (seeded again from the window's seed and count, so a
restored window keeps a uniform sample, not the very values an unbroken run would
have), and the latest records (`/api/drift` shows the stream again once its next
window closes). State written under another window or reference shape
(`restarts_streams`) is not read: the stream starts afresh, as after such a reload.
"""

from __future__ import annotations

import hashlib
import math
from array import array
from collections.abc import Mapping

import numpy as np

from anomalyd.config.drift import DriftSection
from anomalyd.domain import Alert
from anomalyd.drift.change import make_drift_detector
from anomalyd.drift.episode import Episode, Status
from anomalyd.drift.monitor import MAX_SUSPICION, DriftState, _Field, _FieldWindow, _Window, shape
from anomalyd.drift.reference import ReferenceHistory, Snapshot
from anomalyd.drift.rule import Side
from anomalyd.drift.sample import Reservoir
from anomalyd.drift.seasonal import Profile
from anomalyd.drift.summary import Stats, Summary
from anomalyd.drift.windows import OpenWindows
from anomalyd.plain import (
    Plain,
    StateError,
    number,
    numbers,
    read_bool,
    read_finite,
    read_float,
    read_floats,
    read_int,
    read_labels,
    read_list,
    read_object,
    read_optional_finite,
    read_str,
    required,
)

VERSION = 1


def shape_digest(config: DriftSection) -> str:
    """What a stream's drift state was built with (`monitor.restarts_streams`)."""

    text = repr(shape(config)).encode()
    return hashlib.blake2b(text, digest_size=12).hexdigest()


# -- writing -------------------------------------------------------------------------------


def encode(state: DriftState, config: DriftSection) -> dict[str, Plain]:
    windows = state.windows
    return {
        "version": VERSION,
        "shape": shape_digest(config),
        "size": None if windows is None else windows.size,
        "closed_until": None if windows is None else number(windows.closed_until),
        "open": [] if windows is None else [_window(w) for _, w in windows.items()],
        "first_ts": state.first_ts,
        "max_ts": state.max_ts,
        "last_arrival": state.last_arrival,
        "pending": [[ts, values, scores] for ts, values, scores in state.pending],
        "sparse": state.sparse,
        "confirm": state.confirm,
        "closed": state.closed,
        "judged": state.judged,
        "fields": {name: _field(f) for name, f in state.fields.items()},
        "episode": {
            "status": state.episode.status.value,
            "streak": state.episode.streak,
            "since": state.episode.since,
        },
        "alert": None if state.alert is None else state.alert.to_json(),
        "labels": dict(state.labels),
        "late": state.late,
    }


def _window(window: _Window) -> dict[str, Plain]:

    return {
        "start": window.start,
        "events": window.events,
        "invalid": window.invalid,
        "alerts": window.alerts,
        "fields": {
            name: {
                "moments": numbers(slot.summary.moments()),
                "sample": list(slot.summary.sample.state()),
                "score_sum": slot.score_sum,
                "scored": slot.scored,
            }
            for name, slot in window.fields.items()
        },
    }


def _field(tracked: _Field) -> dict[str, Plain]:

    profile = tracked.profile
    return {
        "reference": [_snapshot(s) for s in tracked.reference.windows],
        "held": [_snapshot(s) for s in tracked.reference.held],
        "profile": None
        if profile is None
        else {
            "counts": profile.counts.tolist(),
            "means": profile.means.tolist(),
            "m2": profile.m2.tolist(),
            "cap": profile.cap,
        },
        "seasonal": tracked.seasonal,
        "first_ts": tracked.first_ts,
        "judge_from": number(tracked.judge_from),
    }


def _snapshot(snapshot: Snapshot) -> dict[str, Plain]:
    return {
        "start": snapshot.start,
        "full": snapshot.full,
        "stats": numbers(_stats_fields(snapshot.side.stats)),
        "sample": snapshot.side.sample.tolist(),
    }


def _stats_fields(stats: Stats) -> list[float]:
    s = stats
    return [s.count, s.mean, s.std, s.min, s.max, s.p50, s.p95, s.p99]


# -- reading -------------------------------------------------------------------------------


def decode(data: Plain, config: DriftSection) -> DriftState | None:
    """The state, or None if it was built under another window or reference shape."""

    d = read_object(data, "drift")
    if read_int(required(d, "version", "drift"), "drift.version") != VERSION:
        raise StateError("drift.version: not this version")
    if read_str(required(d, "shape", "drift"), "drift.shape") != shape_digest(config):
        return None
    size = required(d, "size", "drift")
    windows = None
    if size is not None:
        windows = _open_windows(d, read_finite(size, "drift.size"), config)
    episode = read_object(required(d, "episode", "drift"), "drift.episode")
    status = read_str(required(episode, "status", "drift.episode"), "drift.episode.status")
    if status not in {s.value for s in Status}:
        raise StateError("drift.episode.status: stable, suspect or drifting")
    alert = required(d, "alert", "drift")
    return DriftState(
        windows=windows,
        first_ts=read_finite(required(d, "first_ts", "drift"), "drift.first_ts"),
        max_ts=read_finite(required(d, "max_ts", "drift"), "drift.max_ts"),
        last_arrival=read_finite(required(d, "last_arrival", "drift"), "drift.last_arrival"),
        pending=[_pending(p, f"drift.pending[{i}]") for i, p in enumerate(_list(d, "pending"))],
        sparse=read_bool(required(d, "sparse", "drift"), "drift.sparse"),
        confirm=read_int(required(d, "confirm", "drift"), "drift.confirm", 1, 10_000),
        closed=read_int(required(d, "closed", "drift"), "drift.closed"),
        judged=read_int(required(d, "judged", "drift"), "drift.judged"),
        fields={
            read_str(name, "drift.fields"): _read_field(item, f"drift.fields.{name}", config)
            for name, item in read_object(required(d, "fields", "drift"), "drift.fields").items()
        },
        episode=Episode(
            Status(status),
            read_int(required(episode, "streak", "drift.episode"), "drift.episode.streak"),
            read_optional_finite(required(episode, "since", "drift.episode"), "drift.since"),
        ),
        alert=None if alert is None else Alert.from_json(read_object(alert, "drift.alert")),
        labels=read_labels(required(d, "labels", "drift"), "drift.labels"),
        late=read_int(required(d, "late", "drift"), "drift.late"),
    )


def _list(data: Mapping[str, Plain], key: str) -> list[Plain]:
    return read_list(required(data, key, "drift"), f"drift.{key}")


def _open_windows(
    d: Mapping[str, Plain], size: float, config: DriftSection
) -> OpenWindows[_Window]:

    if size <= 0:
        raise StateError("drift.size: positive")
    windows: OpenWindows[_Window] = OpenWindows(size, config.grace)
    windows.closed_until = read_float(required(d, "closed_until", "drift"), "drift.closed_until")
    for i, item in enumerate(_list(d, "open")):
        where = f"drift.open[{i}]"
        w = read_object(item, where)
        window = _Window(read_finite(required(w, "start", where), f"{where}.start"))
        window.events = read_int(required(w, "events", where), f"{where}.events")
        window.invalid = read_int(required(w, "invalid", where), f"{where}.invalid")
        window.alerts = read_int(required(w, "alerts", where), f"{where}.alerts")
        fields = read_object(required(w, "fields", where), f"{where}.fields")
        for name, slot in fields.items():
            window.fields[name] = _slot(slot, f"{where}.fields.{name}", config)
        windows.put(window.start, window)
    return windows


def _slot(item: Plain, where: str, config: DriftSection) -> _FieldWindow:
    data = read_object(item, where)
    count, mean, m2, low, high = read_floats(required(data, "moments", where), where, 5)
    seed, seen, values = read_list(required(data, "sample", where), f"{where}.sample", 3)
    reservoir = Reservoir.from_state(
        config.sample_size,
        read_int(seed, f"{where}.sample.seed", 0, 2**32),
        read_int(seen, f"{where}.sample.seen"),
        read_floats(values, f"{where}.sample.values"),
    )
    moments = (int(count), mean, max(m2, 0.0), low, high)
    slot = _FieldWindow(Summary.restored(moments, reservoir))
    slot.score_sum = read_finite(required(data, "score_sum", where), f"{where}.score_sum")
    slot.scored = read_int(required(data, "scored", where), f"{where}.scored")
    return slot


def _pending(
    item: Plain, where: str
) -> tuple[float, dict[str, float], dict[str, float | None] | None]:
    ts, values, scores = read_list(item, where, 3)
    read = {k: read_float(v, f"{where}.values") for k, v in read_object(values, where).items()}
    score_map = None
    if scores is not None:
        score_map = {
            k: None if v is None else read_float(v, f"{where}.scores")
            for k, v in read_object(scores, where).items()
        }
    return read_finite(ts, f"{where}.ts"), read, score_map


def _read_field(item: Plain, where: str, config: DriftSection) -> _Field:

    data = read_object(item, where)
    reference = ReferenceHistory(config.reference, config.rolling_windows, config.pinned_start_ts)
    reference.load(
        tuple(_read_snapshot(s, f"{where}.reference") for s in _list2(data, "reference", where)),
        tuple(
            _read_snapshot(s, f"{where}.held")
            for s in _list2(data, "held", where)[1 - MAX_SUSPICION :]
        ),
    )
    seasonal = required(data, "seasonal", where)
    return _Field(
        values=make_drift_detector(config.change_detector),
        reference=reference,
        profile=_read_profile(required(data, "profile", where), f"{where}.profile", config),
        seasonal=None if seasonal is None else read_bool(seasonal, f"{where}.seasonal"),
        first_ts=read_finite(required(data, "first_ts", where), f"{where}.first_ts"),
        judge_from=read_float(required(data, "judge_from", where), f"{where}.judge_from"),
    )


def _list2(data: Mapping[str, Plain], key: str, where: str) -> list[Plain]:
    return read_list(required(data, key, where), f"{where}.{key}")


def _read_snapshot(item: Plain, where: str) -> Snapshot:
    data = read_object(item, where)
    count, *rest = read_floats(required(data, "stats", where), f"{where}.stats", 8)
    if count < 1 or any(math.isnan(x) for x in rest):
        raise StateError(f"{where}.stats: a count >= 1 and numbers")
    stats = Stats(int(count), *rest)
    sample = np.sort(np.array(read_floats(required(data, "sample", where), where), dtype=float))
    if sample.size < 1:
        raise StateError(f"{where}.sample: at least one value")
    start = read_finite(required(data, "start", where), f"{where}.start")
    return Snapshot(start, Side(stats, sample), read_bool(required(data, "full", where), where))


def _read_profile(item: Plain, where: str, config: DriftSection) -> Profile | None:
    if item is None:
        return None
    data = read_object(item, where)
    bins = config.seasonality.bins
    m2 = read_floats(required(data, "m2", where), f"{where}.m2")
    if len(m2) not in (0, bins):
        raise StateError(f"{where}.m2: 0 or {bins} items")
    counts = np.array(read_floats(required(data, "counts", where), f"{where}.counts", bins))
    means = np.array(read_floats(required(data, "means", where), f"{where}.means", bins))
    arrays = np.concatenate([counts, means, np.array(m2)])
    if not np.all(np.isfinite(arrays)) or counts.min() < 0 or min(m2, default=0.0) < 0:
        raise StateError(f"{where}: finite numbers, counts and sums of squares >= 0")
    cap = read_finite(required(data, "cap", where), f"{where}.cap")
    return Profile(
        config.seasonality.period,
        array("d", counts),
        array("d", means),
        array("d", m2),
        max(cap, 0.0),
    )
