"""Reference modes: which windows a window is compared with, and how that moves."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from drift_mechanics import T0, W, fixed_section

from anomalyd.config.drift import DriftSection
from anomalyd.domain import Event
from anomalyd.drift import DriftMonitor, DriftUpdate


def monitor(**config: Any) -> DriftMonitor:
    return DriftMonitor(fixed_section(**{"min_count": 50, **config}), "http://anomalyd.test")


def feed(
    m: DriftMonitor, means: list[float], seed: int = 0, offset: float = 0.5
) -> list[DriftUpdate]:
    """One window per mean (std 1, 200 events), the first event `offset` s into window 0."""
    rng = np.random.default_rng(seed)
    updates = []
    for w, mean in enumerate(means):
        times = T0 + w * W + offset + np.arange(200) * (W - offset) / 200
        for ts, value in zip(times.tolist(), rng.normal(mean, 1.0, 200).tolist(), strict=True):
            m.observe(Event("s", ts, {"value": value}), now=ts)
        updates.append(m.close_due(T0 + (w + 1) * W, "s"))
    return updates


def references(updates: list[DriftUpdate]) -> list[list[int] | None]:
    """For each window, the indexes of the windows it was compared with."""
    out: list[list[int] | None] = []
    for update in updates:
        reference = update.records[0].reference
        out.append(None if reference is None else [int((s - T0) // W) for s in reference.starts])
    return out


def test_previous_is_the_last_normal_window() -> None:
    updates = feed(monitor(reference="previous"), [0.0] * 4)
    assert references(updates) == [None, [0], [1], [2]]


def test_rolling_pools_the_last_n_normal_windows() -> None:
    updates = feed(monitor(reference="rolling", rolling_windows=3), [0.0] * 6)
    assert references(updates) == [None, [0], [0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4]]
    pooled = updates[3].records[0].reference
    assert pooled is not None
    assert pooled.stats.count == 600


@pytest.mark.parametrize(("mode", "windows", "kept"), [("rolling", 3, 129), ("previous", 1, 64)])
def test_a_reference_holds_about_k_values_and_stats_of_every_event(
    mode: str, windows: int, kept: int
) -> None:
    # K = 64: a rolling reference of 3 windows keeps ceil(2 * 64 / 3) = 43 values of each.
    m = monitor(reference=mode, rolling_windows=3, sample_size=64)
    updates = feed(m, [0.0] * 4)
    state = m.state("s")
    assert state is not None
    reference = state.fields["value"].reference.view()
    assert reference is not None
    assert reference.side.sample.size == kept
    assert np.all(np.diff(reference.side.sample) >= 0)
    # Count, min and max come from every event of its windows, not from the samples.
    parts = [u.records[0].stats for u in updates[-windows:]]
    assert reference.side.stats.count == 200 * windows
    assert reference.side.stats.min == min(p.min for p in parts if p is not None)
    assert reference.side.stats.max == max(p.max for p in parts if p is not None)


@pytest.mark.parametrize("mode", ["previous", "rolling"])
def test_a_suspect_window_is_held_back_then_becomes_the_new_reference(mode: str) -> None:
    m = monitor(reference=mode, rolling_windows=3, confirm_windows=3, stable_windows=2)
    updates = feed(m, [0.0, 0.0, 0.0, 4.0, 4.0, 4.0, 4.0, 4.0])
    last_normal = [2] if mode == "previous" else [0, 1, 2]
    # 3 and 4 are compared with the old regime; on 5 the episode opens and 3..5 are the
    # reference (the new regime); 6 and 7 match it, and close the episode.
    assert references(updates)[3:6] == [last_normal] * 3
    assert references(updates)[6] == ([5] if mode == "previous" else [3, 4, 5])
    assert [u.records[0].status.value for u in updates[3:]] == [
        "suspect", "suspect", "drifting", "drifting", "stable",
    ]  # fmt: skip


def test_a_lone_odd_window_never_enters_the_reference() -> None:
    updates = feed(monitor(reference="rolling", rolling_windows=4), [0.0, 0.0, 6.0, 0.0, 0.0])
    assert references(updates) == [None, [0], [0, 1], [0, 1], [0, 1, 3]]


def test_pinned_defaults_to_the_first_full_window() -> None:
    # The stream starts 0.5 s into window 0: window 1 is its first full window.
    updates = feed(monitor(reference="pinned"), [0.0, 0.0, 0.0, 3.0, 3.0, 3.0])
    assert references(updates) == [None, None, [1], [1], [1], [1]]
    assert updates[1].records[0].judgement == "no_reference"


def test_a_stream_starting_on_a_window_edge_pins_that_window() -> None:
    updates = feed(monitor(reference="pinned"), [0.0, 0.0, 0.0], offset=0.0)
    assert references(updates) == [None, [0], [0]]


def test_pinned_start_picks_the_window() -> None:
    m = monitor(reference="pinned", pinned_start="2027-01-15T08:02:00Z")
    assert (
        DriftSection.model_validate(
            {"window": W, "reference": "pinned", "pinned_start": "2027-01-15T08:02:00Z"}
        ).pinned_start_ts
        == T0 + 2 * W
    )
    updates = feed(m, [0.0] * 5)
    assert references(updates) == [None, None, None, [2], [2]]


def test_a_pinned_window_never_seen_falls_back_to_the_first_full_window() -> None:
    m = monitor(reference="pinned", pinned_start="2027-01-15T07:00:00Z")  # before the stream
    updates = feed(m, [0.0] * 4)
    assert references(updates) == [None, None, [1], [1]]


def test_windows_with_too_few_events_never_become_the_reference() -> None:
    m = monitor(reference="previous", min_count=300)
    updates = feed(m, [0.0] * 3)
    assert references(updates) == [None, None, None]
    assert {u.records[0].judgement for u in updates} == {"too_few_events"}
