"""Drift with the default config on realistic streams: windows sized per stream from its
rate, daily cycles learned and taken out, and drift state that survives a restart."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np
import orjson
import pytest

from anomalyd.backtest.report import summary_lines
from anomalyd.backtest.run import BacktestResult
from anomalyd.config import parse_config
from anomalyd.config.drift import DriftSection
from anomalyd.domain import Alert, AlertStatus, Event
from anomalyd.drift import DriftMonitor, WindowJudgement, WindowRecord
from anomalyd.drift import state as drift_state
from anomalyd.pipeline import Pipeline

T0 = 1_800_000_000.0  # a multiple of a day
DAY = 86400.0
URL = "http://anomalyd.test"

Values = Callable[[np.random.Generator, np.ndarray], np.ndarray]


def noise(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    return rng.normal(50.0, 2.0, t.size)


def daily(shift_h: float = 0.0, since: float = math.inf) -> Values:
    """N(50, 2) around a daily cycle of amplitude 3 (1.5 std); its phase moves by
    `shift_h` hours from `since` on."""

    def values(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
        lag = np.where(t >= since, shift_h * 3600.0, 0.0)
        return 50.0 + 3.0 * np.sin(2 * np.pi * (t - lag) / DAY) + rng.normal(0.0, 2.0, t.size)

    return values


def feed(
    m: DriftMonitor, cadence: float, days: float, values: Values = noise, seed: int = 1
) -> tuple[list[WindowRecord], list[Alert]]:
    """A stream sending one event every `cadence` seconds (jittered), each closing what it
    can, as the worker does."""
    rng = np.random.default_rng(seed)
    n = int(days * DAY / cadence)
    t = T0 + (np.arange(n) + rng.uniform(0.0, 1.0, n)) * cadence
    records: list[WindowRecord] = []
    alerts: list[Alert] = []
    for ts, value in zip(t.tolist(), values(rng, t).tolist(), strict=True):
        m.observe(Event("s", ts, {"value": value}), now=ts)
        update = m.close_due(ts, "s")
        records += update.records
        alerts += update.alerts
    return records, alerts


def firing(alerts: Sequence[Alert]) -> list[Alert]:
    return [a for a in alerts if a.status is AlertStatus.FIRING]


@pytest.mark.parametrize(("cadence", "window"), [(1.0, 1200.0), (60.0, 7200.0), (300.0, 21600.0)])
def test_every_cadence_gets_windows_that_are_judged(cadence: float, window: float) -> None:
    days = 2.0 if cadence == 1.0 else 4.0
    m = DriftMonitor(DriftSection(), URL)
    records, alerts = feed(m, cadence, days)
    assert {r.end - r.start for r in records} == {window}
    judged = [r for r in records if r.judged]
    # The first day learns whether the stream has a daily cycle; from then on its
    # windows are judged, against the first day's (it has none).
    assert len(judged) >= (days - 1) * DAY / window - 2
    assert all(r.judgement is WindowJudgement.LEARNING for r in records if r.end <= T0 + DAY)
    assert not any(r.sparse for r in records)
    assert firing(alerts) == []
    assert m.coverage()["s"]["windows_judged"] == len(judged)


def test_a_stream_with_no_cycle_is_judged_against_its_first_day_and_a_cycle_afresh() -> None:
    records, _ = feed(DriftMonitor(DriftSection(), URL), 300.0, 2.0)
    first = next(r for r in records if r.judgement is not WindowJudgement.LEARNING)
    # A reference of the first day's 6-hour windows, not of one window (a young one).
    assert first.judged
    assert first.reference is not None
    assert len(first.reference.starts) >= 3
    assert max(first.reference.starts) < T0 + DAY
    # A daily cycle is judged on residuals: the raw first day is no reference for them.
    records, _ = feed(DriftMonitor(DriftSection(), URL), 300.0, 2.0, daily())
    first = next(r for r in records if r.judgement is not WindowJudgement.LEARNING)
    assert first.seasonal
    assert first.judgement is WindowJudgement.NO_REFERENCE


def test_a_stream_too_sparse_to_judge_says_so_in_its_records_and_the_summary() -> None:
    m = DriftMonitor(DriftSection(), URL)
    records, _ = feed(m, 3600.0, 4.0)  # one event an hour: 24 a day, under min_count
    assert {r.end - r.start for r in records} == {DAY}
    assert all(r.sparse and not r.judged for r in records)
    assert m.coverage()["s"]["sparse"] is True
    lines = summary_lines(BacktestResult(drift=records), elapsed=1.0)
    assert f"drift: judged 0 of {len(records)} windows (1 stream(s))" in lines
    assert "drift: 1 stream(s) too sparse to judge most windows: s" in lines


def test_a_pinned_window_is_kept() -> None:
    m = DriftMonitor(DriftSection(window=300.0), URL)
    records, _ = feed(m, 60.0, 0.5)
    assert {r.end - r.start for r in records} == {300.0}
    assert all(r.judgement is WindowJudgement.LEARNING for r in records)  # still the first day


def test_an_ordinary_day_of_a_daily_cycle_is_not_drift() -> None:
    m = DriftMonitor(DriftSection(), URL)
    records, alerts = feed(m, 60.0, 6.0, daily())
    assert firing(alerts) == []
    assert all(r.seasonal for r in records if r.judged)  # judged with the cycle taken out
    # Judged on the raw values, the same stream drifts all day long.
    raw = DriftMonitor(DriftSection(seasonality={"detect": False}), URL)
    assert firing(feed(raw, 60.0, 6.0, daily())[1]) != []


@pytest.mark.parametrize("shift_h", [12.0, 6.0])
def test_a_change_of_phase_of_the_daily_cycle_is_drift(shift_h: float) -> None:
    change = T0 + 3.3 * DAY
    m = DriftMonitor(DriftSection(), URL)
    _, alerts = feed(m, 60.0, 4.5, daily(shift_h, since=change))
    [alert] = firing(alerts)
    assert change - 7200 < alert.starts_at < change + 6 * 3600  # its first shifted window


def test_a_non_seasonal_stream_is_judged_on_its_values() -> None:
    m = DriftMonitor(DriftSection(), URL)
    records, _ = feed(m, 60.0, 3.0)
    assert {r.seasonal for r in records if r.judged} == {False}


# -- state that survives a restart -----------------------------------------------------------

FIXED = DriftSection(
    window=60.0,
    grace=0.0,
    min_count=50,
    confirm_for=0.0,
    seasonality={"detect": False},
)


def windows(m: DriftMonitor, levels: Sequence[float], first: int, seed: int) -> list[object]:
    """One window of 100 N(level, 1) values per level, starting at window `first`; the
    first event of the window after the last closes it."""
    rng = np.random.default_rng(seed)
    out: list[object] = []
    for w, level in enumerate(levels, start=first):
        for i, value in enumerate(rng.normal(level, 1.0, 100).tolist()):
            ts = T0 + 60.0 * w + 0.6 * i
            m.observe(Event("s", ts, {"value": value}), now=ts)
            update = m.close_due(ts, "s")
            out += [(r.start, r.judgement, r.status, r.episode) for r in update.records]
            out += [(a.status, a.fingerprint, a.starts_at, a.ends_at) for a in update.alerts]
    return out


def restarted(m: DriftMonitor) -> DriftMonitor:
    """A new monitor holding what `m` saved of stream s, through JSON."""
    state = m.state("s")
    assert state is not None
    data = orjson.loads(orjson.dumps(drift_state.encode(state, m.config)))
    again = DriftMonitor(m.config, URL)
    restored = drift_state.decode(data, again.config)
    assert restored is not None
    again.restore("s", restored)
    return again


def test_a_restored_monitor_goes_on_as_if_it_never_stopped() -> None:
    # 6 windows at 0, then a shift by 3 std: the episode opens when window 7 closes.
    before = [0.0] * 6 + [3.0] * 4
    after = [3.0] * 5 + [0.0]
    straight = DriftMonitor(FIXED, URL)
    windows(straight, before, 0, seed=2)
    saved = restarted(straight)
    # The restart fell in the middle of the episode, with window 9 open.
    assert saved.is_drifting("s")
    expected = windows(straight, after, len(before), seed=2)
    assert windows(saved, after, len(before), seed=2) == expected
    assert any(x[0] is AlertStatus.RESOLVED for x in expected if isinstance(x, tuple))


def test_state_written_under_another_window_shape_is_not_read() -> None:
    m = DriftMonitor(FIXED, URL)
    windows(m, [0.0] * 3, 0, seed=1)
    state = m.state("s")
    assert state is not None
    data = drift_state.encode(state, m.config)
    assert drift_state.decode(data, FIXED.model_copy(update={"window": 120.0})) is None


PIPELINE = """
rules: []
model: {mode: shadow}
drift: {window: 60s, grace: 0s, min_count: 50, confirm_for: 0s, seasonality: {detect: false}}
"""


def test_one_snapshot_holds_the_engine_and_the_drift_state() -> None:
    first = Pipeline(parse_config(PIPELINE))
    rng = np.random.default_rng(3)
    for i, value in enumerate(rng.normal(10.0, 1.0, 250).tolist()):
        first.process(Event("s", T0 + 0.6 * i, {"value": value}), now=T0 + 0.6 * i)
    blob = first.snapshot("s")
    assert blob is not None
    second = Pipeline(parse_config(PIPELINE))
    assert second.refusal("s", blob) is None
    assert second.drift is not None
    resumed = second.drift.coverage()["s"]
    assert resumed == {"window": 60.0, "sparse": False, "windows_closed": 2, "windows_judged": 1}
    # A broken drift part costs the drift state only: the engine's is restored.
    third = Pipeline(parse_config(PIPELINE))
    engine_part = blob.split(b"\n")[:2]
    assert third.refusal("s", b"\n".join([*engine_part, b"{broken"])) is None
    assert third.engine.snapshot("s") is not None
    assert third.drift is not None
    assert third.drift.state("s") is None


# -- the decision rule on realistic cadences -------------------------------------------------


def variance_doubled(since: float) -> Values:
    def values(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
        return rng.normal(50.0, np.where(t >= since, 2.0 * math.sqrt(2.0), 2.0), t.size)

    return values


def test_a_slow_streams_doubled_variance_is_seen_within_a_day() -> None:
    """One event every five minutes: a day holds 288. A suspicion is judged on its
    windows pooled, so the evidence of several 6-hour windows adds up."""
    change = T0 + 3.4 * DAY
    seen = 0
    for seed in range(6):
        m = DriftMonitor(DriftSection(), URL)
        _, alerts = feed(m, 300.0, 4.5, variance_doubled(change), seed=seed)
        fired = firing(alerts)
        seen += bool(fired) and fired[0].starts_at < change + DAY
    assert seen >= 4


def bursts(at: Sequence[float], minutes: float = 10.0) -> Values:
    """N(50, 2), with `minutes` of three times the spread from each of `at` on."""

    def values(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
        inside = np.zeros(t.size, dtype=bool)
        for start in at:
            inside |= (t >= start) & (t < start + 60.0 * minutes)
        return rng.normal(50.0, np.where(inside, 6.0, 2.0), t.size)

    return values


def test_noise_bursts_across_window_edges_open_no_episode() -> None:
    # 20-minute windows at one event a second; every 2 hours, 15 minutes of noise across
    # the edge of two windows: the suspicion they open is not carried by the window
    # after them (it must show a material difference of its own).
    edges = [T0 + DAY + 3600.0 * h + 1200.0 - 450.0 for h in range(2, 48, 2)]
    m = DriftMonitor(DriftSection(), URL)
    records, alerts = feed(m, 1.0, 3.0, bursts(edges, minutes=15.0), seed=1)
    assert firing(alerts) == []
    assert any(r.judgement is WindowJudgement.SHIFTED for r in records)  # each burst is seen


def test_a_slow_streams_change_of_phase_is_seen_within_a_day() -> None:
    """One event every five minutes, 6-hour windows: a daily cycle moved by 6 hours
    leaves residuals strong, quiet, strong the other way, quiet. The quiet windows
    carry the suspicion on while its pool stays clear (without: 21 of these 24)."""
    seen, bridged = 0, 0
    for at, seed in itertools.product((3.4, 3.6), range(12)):
        change = T0 + at * DAY
        m = DriftMonitor(DriftSection(), URL)
        records, alerts = feed(m, 300.0, at + 1.1, daily(6.0, since=change), seed=seed)
        fired = firing(alerts)
        seen += bool(fired) and fired[0].starts_at < change + DAY
        bridged += any(r.judgement is WindowJudgement.LEANING for r in records)
    assert seen == 24
    assert bridged > 0


def test_an_excursion_across_a_window_edge_is_not_drift() -> None:
    """One event a minute, 2-hour windows: 30 minutes at +6 sd across the edge of two
    windows moves each one's mean by 0.75 sd, but it is the anomaly detector's to page:
    the location test compares trimmed means (with plain means: all 10 opened one)."""
    opened = 0
    for seed in range(10):
        edge = T0 + 3 * DAY + 7200.0 * (seed + 1)
        m = DriftMonitor(DriftSection(), URL)
        _, alerts = feed(m, 60.0, 4.0, excursion(edge - 900.0, 1800.0, 12.0), seed=seed)
        opened += bool(firing(alerts))
    assert opened <= 1


def excursion(start: float, seconds: float, height: float) -> Values:
    """N(50, 2), `height` higher for `seconds` from `start`."""

    def values(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
        inside = (t >= start) & (t < start + seconds)
        return rng.normal(50.0, 2.0, t.size) + np.where(inside, height, 0.0)

    return values
