"""The drift monitor on seeded synthetic streams with shifts at known windows: the exact
window an episode opens and closes, its one alert, the records, and state."""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest
from drift_mechanics import FIXED, T0, W, fixed_section
from scipy import stats as scipy_stats

from anomalyd.domain import AlertStatus, Event
from anomalyd.drift import DriftMonitor, DriftUpdate, Status

URL = "http://anomalyd.test:6066"
FIRING, RESOLVED = AlertStatus.FIRING, AlertStatus.RESOLVED


def monitor(**config: Any) -> DriftMonitor:
    return DriftMonitor(fixed_section(**config), URL)


def gaussian(seed: int, windows: int, n: int = 300, shifts: Mapping[int, float] = {}) -> list[Any]:
    """`windows` windows of N(50, 2) values, plus `shifts[w]` (in std) from window w on."""
    rng = np.random.default_rng(seed)
    out, offset = [], 0.0
    for w in range(windows):
        offset = shifts.get(w, offset)
        out.append(rng.normal(50.0 + 2.0 * offset, 2.0, n))
    return out


def feed(
    m: DriftMonitor,
    windows: Sequence[Any],
    stream: str = "s",
    first: int = 0,
    labels: Mapping[str, str] | None = None,
) -> list[DriftUpdate]:
    """Send each window's values evenly over it; close it by the stream's event time."""
    updates = []
    for w, values in enumerate(windows, start=first):
        rows = values if isinstance(values, list) else [{"value": v} for v in values.tolist()]
        for i, row in enumerate(rows):
            ts = T0 + w * W + (i + 0.5) * W / len(rows)
            m.observe(Event(stream, ts, row, labels or {}), now=ts)
        updates.append(m.close_due(T0 + (w + 1) * W, stream))
    return updates


def alerts(updates: Sequence[DriftUpdate]) -> list[tuple[int, AlertStatus]]:
    return [(i, a.status) for i, u in enumerate(updates) for a in u.alerts]


def statuses(updates: Sequence[DriftUpdate]) -> str:
    return "".join(u.records[0].status.value[0] for u in updates)


# --- detection ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_a_2_sigma_mean_shift_is_confirmed_on_its_second_window(seed: int) -> None:
    updates = feed(monitor(), gaussian(seed, 14, shifts={10: 2.0}))
    assert statuses(updates)[:12] == "s" * 10 + "sd"
    assert updates[10].records[0].status is Status.SUSPECT
    assert updates[10].records[0].judgement == "shifted"
    (alert,) = updates[11].alerts
    assert alert.status is FIRING
    assert alert.starts_at == T0 + 10 * W
    record = updates[11].records[0]
    assert record.episode == "s@2027-01-15T08:10:00.000Z"
    assert record.comparison is not None
    assert record.comparison.mean_shift == pytest.approx(2, 0.2)


@pytest.mark.parametrize("seed", range(3))
def test_a_window_that_ends_a_suspicion_may_start_the_next(seed: int) -> None:
    # +2 sd for one window, then -2 sd: the second window does not carry the first's
    # suspicion on (judged on location alone: a shape leans whichever way it changed),
    # but opens its own, which the third confirms
    location_only = {**FIXED["thresholds"], "ks": 1.0}
    m = monitor(thresholds=location_only)
    updates = feed(m, gaussian(seed, 14, shifts={10: 2.0, 11: -2.0}))
    assert [u.records[0].status for u in updates[9:13]] == [
        Status.STABLE,
        Status.SUSPECT,
        Status.SUSPECT,
        Status.DRIFTING,
    ]
    assert [r.judgement for r in (updates[10].records[0], updates[11].records[0])] == [
        "shifted",
        "shifted",
    ]
    (alert,) = updates[12].alerts
    assert alert.starts_at == T0 + 11 * W
    assert updates[12].records[0].comparison is not None
    assert updates[12].records[0].comparison.mean_shift == pytest.approx(-2, 0.2)


@pytest.mark.parametrize("seed", range(4))
def test_the_window_a_change_started_in_joins_its_suspicion(seed: int) -> None:
    # +1.2 sd over window 10's last quarter, +1 sd from window 11 on: window 10 alone is
    # not shifted (+0.3 sd is under mean_shift 0.5) but leans; window 11 makes the stream
    # suspect, is judged on both pooled, and opens the episode from window 10's start
    windows = gaussian(seed, 14, shifts={11: 1.0})
    windows[10][225:] += 2.4
    updates = feed(monitor(), windows)
    assert [u.records[0].status for u in updates[9:12]] == [
        Status.STABLE,
        Status.STABLE,
        Status.DRIFTING,
    ]
    (alert,) = updates[11].alerts
    assert alert.starts_at == T0 + 10 * W
    assert updates[11].records[0].comparison is not None
    assert updates[11].records[0].comparison.pooled == 2


@pytest.mark.parametrize("reference", ["previous", "rolling", "pinned"])
def test_a_stationary_gaussian_never_drifts(reference: str) -> None:
    m = monitor(reference=reference)
    updates = feed(m, gaussian(42, 300, n=200))
    assert alerts(updates) == []
    assert "d" not in statuses(updates)
    judged = [u.records[0] for u in updates[2:]]  # pinned: on window 1, the first full one
    assert all(r.comparison is not None for r in judged)


def test_a_trivial_shift_in_huge_windows_is_not_drift() -> None:
    # 0.1 std over 20,000 events a window: beyond doubt (p < 1e-12), and not worth a page.
    data = gaussian(3, 6, n=20_000, shifts={3: 0.1})
    assert scipy_stats.ttest_ind(data[2], data[3]).pvalue < 1e-12
    updates = feed(monitor(), data)
    assert alerts(updates) == []
    assert statuses(updates) == "ssssss"
    record = updates[3].records[0]
    assert record.stats is not None
    assert record.stats.count == 20_000
    assert record.comparison is not None
    assert record.comparison.mean_shift == pytest.approx(0.1, abs=0.03)


def test_windows_below_min_count_are_recorded_not_judged() -> None:
    updates = feed(monitor(min_count=100), gaussian(1, 6, n=50, shifts={3: 5.0}))
    assert {u.records[0].judgement for u in updates} == {"too_few_events"}
    assert alerts(updates) == []


# --- episodes and their alert -------------------------------------------------------------------


def test_one_alert_per_episode_resolved_once_the_new_level_is_stable() -> None:
    m = monitor(reference="rolling", confirm_windows=2, stable_windows=3)
    data = gaussian(7, 30, shifts={10: 3.0, 20: 0.0})
    updates = feed(m, data, labels={"team": "payments"})
    # Opens on 11; the new level becomes the reference, so 12..14 are stable: closes on 14.
    # Going back at 20 is a change too: a second episode, 21..24.
    assert alerts(updates) == [(11, FIRING), (14, RESOLVED), (21, FIRING), (24, RESOLVED)]
    first, resolved = updates[11].alerts[0], updates[14].alerts[0]
    assert resolved.fingerprint == first.fingerprint
    assert resolved.ends_at == T0 + 15 * W
    assert first.labels == {
        "alertname": "DataDrift",
        "stream": "s",
        "severity": "warning",
        "detector": "drift",
        "team": "payments",
    }
    assert first.annotations["drift"] == "drifting"
    assert resolved.annotations["drift"] == "stable"
    assert first.annotations["episode"] != updates[21].alerts[0].annotations["episode"]
    assert updates[14].records[0].episode == first.annotations["episode"]  # the closing record
    assert updates[15].records[0].episode is None


def test_a_pinned_reference_keeps_the_episode_open_until_the_data_returns() -> None:
    m = monitor(reference="pinned", stable_windows=2)
    updates = feed(m, gaussian(8, 26, shifts={10: 2.0, 20: 0.0}))
    assert alerts(updates) == [(11, FIRING), (21, RESOLVED)]
    assert statuses(updates) == "s" * 10 + "s" + "d" * 10 + "s" * 5


def test_is_drifting_follows_the_episode() -> None:
    m = monitor()
    feed(m, gaussian(5, 11, shifts={10: 3.0}))
    assert m.status("s") is Status.SUSPECT
    assert not m.is_drifting("s")
    feed(m, gaussian(6, 1, shifts={0: 3.0}), first=11)
    assert m.is_drifting("s")
    assert not m.is_drifting("other")
    assert m.status("other") is None


def test_severity_and_alertname_come_from_config() -> None:
    m = monitor(severity="critical", alertname="InputDrift", confirm_windows=1)
    (alert,) = feed(m, gaussian(2, 4, shifts={3: 4.0}))[3].alerts
    assert alert.labels["severity"] == "critical"
    assert alert.labels["alertname"] == "InputDrift"
    assert "mean shift +3.9" in alert.annotations["summary"]


# --- fields, scores, change detectors -----------------------------------------------------------


def test_each_field_is_judged_on_its_own() -> None:
    rng = np.random.default_rng(11)
    windows = [
        [
            {"latency": float(x), "errors": float(y)}
            for x, y in zip(
                rng.normal(100, 5, 300), rng.normal(3 if w >= 6 else 1, 0.5, 300), strict=True
            )
        ]
        for w in range(8)
    ]
    updates = feed(monitor(), windows)
    by_field = {r.field: r for r in updates[6].records}
    assert by_field["latency"].judgement == "unchanged"
    assert by_field["errors"].judgement == "shifted"
    (alert,) = updates[7].alerts
    assert alert.annotations["field"] == "errors"
    assert "in errors" in alert.annotations["summary"]


def test_model_scores_are_averaged_and_watched_per_field() -> None:
    m = monitor(min_count=10)
    rng = np.random.default_rng(4)
    for w in range(4):
        low = 0.9 if w == 3 else 0.1
        for i in range(200):
            ts = T0 + w * W + i * 0.25
            score = float(rng.uniform(low - 0.05, low + 0.05)) if i % 2 == 0 else None
            m.observe(Event("s", ts, {"value": float(rng.normal())}), ts, {"value": score})
    last = m.flush().records[-1]
    assert last.scored == 100
    assert last.score_mean == pytest.approx(0.9, abs=0.01)
    assert last.score_change_detected


def test_the_change_detector_reports_the_window_it_fired_in() -> None:
    updates = feed(monitor(), gaussian(9, 8, shifts={5: 5.0}))
    flags = [u.records[0].change_detected for u in updates]
    assert flags[5]
    assert not any(flags[:5])


# --- records ------------------------------------------------------------------------------------

RECORD_KEYS = {
    "stream", "field", "start", "end", "closed_by", "events", "invalid", "invalid_rate",
    "alerts", "alert_rate", "late", "stats", "score_mean", "scored", "reference", "judgement",
    "psi", "ks", "ks_pvalue", "chi2_pvalue", "wasserstein", "mean_shift", "scale_ratio",
    "shifted_by", "change_detected", "score_change_detected", "status", "episode", "sparse",
    "seasonal", "pooled_windows",
}  # fmt: skip


def test_records_follow_the_documented_schema() -> None:
    m = monitor(rolling_windows=2)
    updates = feed(m, gaussian(12, 4, shifts={3: 3.0}))
    first, last = updates[0].records[0].to_json(), updates[3].records[0].to_json()
    for record in (first, last):
        assert set(record) == RECORD_KEYS
        json.dumps(record, allow_nan=False)  # strict JSON
    assert first["reference"] is None
    assert first["judgement"] == "no_reference"
    assert first["psi"] is None
    assert first["shifted_by"] == []
    assert last["start"] == "2027-01-15T08:03:00.000Z"
    assert last["end"] == "2027-01-15T08:04:00.000Z"
    assert set(last["stats"]) == {"count", "mean", "std", "min", "max", "p50", "p95", "p99"}
    assert last["reference"]["mode"] == "rolling"
    assert last["reference"]["windows"] == ["2027-01-15T08:01:00.000Z", "2027-01-15T08:02:00.000Z"]
    assert last["judgement"] == "shifted"
    assert "location" in last["shifted_by"]
    assert last["status"] == "suspect"
    assert last["episode"] is None
    assert m.latest()["s"][0].to_json() == last


def test_window_stats_are_those_of_the_window() -> None:
    values = np.random.default_rng(13).normal(10, 3, 2000)
    (update,) = feed(monitor(), [values])
    stats = update.records[0].stats
    assert stats is not None
    assert stats.count == 2000
    assert stats.mean == pytest.approx(values.mean())
    assert stats.std == pytest.approx(values.std(ddof=1))
    assert (stats.min, stats.max) == (values.min(), values.max())
    # Beyond the reservoir's K = 512 values the quantiles are a uniform sample's: within
    # 4 standard errors, sqrt(q (1 - q) / K) / density at the quantile, of the truth.
    for got, q in ((stats.p50, 0.5), (stats.p95, 0.95), (stats.p99, 0.99)):
        truth = np.quantile(values, q)
        density = np.exp(-(((truth - 10) / 3) ** 2) / 2) / (3 * np.sqrt(2 * np.pi))
        assert got == pytest.approx(truth, abs=4 * np.sqrt(q * (1 - q) / 512) / density)


def test_window_quantiles_are_exact_up_to_the_sample_size() -> None:
    values = np.random.default_rng(17).normal(10, 3, 500)
    (update,) = feed(monitor(sample_size=512), [values])
    stats = update.records[0].stats
    assert stats is not None
    for got, q in ((stats.p50, 0.5), (stats.p95, 0.95), (stats.p99, 0.99)):
        assert got == pytest.approx(np.quantile(values, q))


# --- streams, state, replay ---------------------------------------------------------------------


def test_replays_give_identical_records_and_alerts() -> None:
    data = gaussian(21, 16, n=800, shifts={8: 1.5})  # 800 > K: the reservoirs sample

    def run() -> list[Any]:
        updates = feed(monitor(), data)
        return [[r.to_json() for r in u.records] + [a.to_json() for a in u.alerts] for u in updates]

    assert run() == run()


def test_state_survives_a_pickle_round_trip_mid_stream() -> None:
    data = gaussian(22, 20, n=600, shifts={12: 2.0})
    straight = feed(monitor(), data)
    first = monitor()
    feed(first, data[:11])
    state = pickle.loads(pickle.dumps(first.state("s")))
    second = monitor()
    second.restore("s", state)
    resumed = feed(second, data[11:], first=11)
    expected = straight[11:]
    assert [[r.to_json() for r in u.records] for u in resumed] == [
        [r.to_json() for r in u.records] for u in expected
    ]
    assert alerts(resumed) == [(i - 11, s) for i, s in alerts(straight)]


def test_only_matching_streams_up_to_max_streams_are_tracked() -> None:
    m = monitor(streams=["checkout.*"], max_streams=2)
    for name in ("checkout.a", "checkout.b", "checkout.c", "search.a"):
        m.observe(Event(name, T0, {"value": 1.0}), now=T0)
    assert m.streams() == ["checkout.a", "checkout.b"]
    assert m.untracked_events == 2
    m.forget(["checkout.a"])
    assert m.streams() == ["checkout.b"]


def test_fields_beyond_max_fields_are_not_tracked() -> None:
    m = monitor(max_fields=1)
    m.observe(Event("s", T0, {"a": 1.0, "b": 2.0}), now=T0)
    assert m.untracked_events == 1
    assert [r.field for r in m.flush().records] == ["a"]
