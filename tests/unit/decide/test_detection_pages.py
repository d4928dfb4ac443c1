"""What the default detection pages on seeded synthetic streams, exactly: the pages people
would get from the example config (`config/anomalyd.yaml`), one event a minute."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from anomalyd.config import AnomalydConfig, load_config
from anomalyd.domain import VALUE_FIELD, AlertStatus, Event
from anomalyd.pipeline import Pipeline

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "anomalyd.yaml"
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY = 1440  # events


@pytest.fixture(scope="module")
def config() -> AnomalydConfig:
    return load_config(EXAMPLE, overrides=["drift.enabled=false"])


def pages(
    config: AnomalydConfig, make: Callable[[random.Random, int], float], n: int, seed: int = 0
) -> list[tuple[int, str]]:
    """(event index, alertname) of every alert that starts firing on stream `api.x`, from
    the whole pipeline (engine, and drift if the config has it on)."""
    pipeline = Pipeline(config)
    rng = random.Random(seed)
    fired = []
    for i in range(n):
        ts = T0 + 60.0 * i
        alerts = pipeline.process(Event("api.x", ts, {VALUE_FIELD: make(rng, i)}), now=ts).alerts
        fired += [(i, a.labels["alertname"]) for a in alerts if a.status is AlertStatus.FIRING]
    return fired


def gaussian(rng: random.Random, i: int) -> float:
    return 100.0 + rng.gauss(0.0, 5.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stationary_noise_pages_nothing_in_three_days(config: AnomalydConfig, seed: int) -> None:
    assert pages(config, gaussian, 3 * DAY, seed) == []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_daily_cycle_pages_nothing(config: AnomalydConfig, seed: int) -> None:
    def daily(rng: random.Random, i: int) -> float:
        return 100.0 + 30.0 * math.sin(2 * math.pi * i / DAY) + rng.gauss(0.0, 5.0)

    assert pages(config, daily, 4 * DAY, seed) == []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_level_shift_pages_once(config: AnomalydConfig, seed: int) -> None:
    at = 2 * DAY

    def shift(rng: random.Random, i: int) -> float:
        return gaussian(rng, i) + (15.0 if i >= at else 0.0)  # +3 sd, for good

    fired = pages(config, shift, 4 * DAY, seed)
    assert [name for _, name in fired] == ["AnomalyDetected"]
    assert at <= fired[0][0] <= at + 10  # within ten minutes


def test_a_spike_beyond_the_range_pages_at_once(config: AnomalydConfig) -> None:
    def spike(rng: random.Random, i: int) -> float:
        return gaussian(rng, i) + (60.0 if i == DAY else 0.0)

    assert pages(config, spike, 2 * DAY) == [(DAY, "AnomalyDetected")]


def test_the_zscore_rule_pages_only_while_the_model_warms_up(config: AnomalydConfig) -> None:
    # The same spike before the model is warm (150 points) and after: the catch-all zscore
    # rule pages the first (its min_samples is 60), the warm model the second.
    def spikes(rng: random.Random, i: int) -> float:
        return gaussian(rng, i) + (80.0 if i in (100, DAY) else 0.0)

    assert pages(config, spikes, 2 * DAY) == [(100, "UnusualValue"), (DAY, "AnomalyDetected")]


def spike_then_shift(rng: random.Random, i: int) -> float:
    """A +12 sd spike beyond the range on day 2, then a +3 sd level shift from day 3."""
    return gaussian(rng, i) + (60.0 if i == DAY + 100 else 0.0) + (15.0 if i >= 2 * DAY else 0.0)


SPIKE, SHIFT = DAY + 100, 2 * DAY


@pytest.mark.parametrize(
    ("variant", "seed", "expected"),
    [
        # The default: extremes page the spike, the likelihood the sustained shift.
        ("robust", 0, [SPIKE, SHIFT + 6]),
        ("robust", 1, [SPIKE, SHIFT + 4]),
        # Each half alone: the likelihood does not page one point, the extremes do not
        # page a shift that stays inside the range.
        ("robust model.range_tolerance=100", 0, [SHIFT + 6]),
        ("robust model.range_tolerance=100", 1, [SHIFT + 4]),
        ("robust model.threshold=1.0", 0, [SPIKE]),
        ("robust model.threshold=1.0", 1, [SPIKE]),
        # River's detectors behind the same likelihood and extremes: all page the spike;
        # the Gaussian scorer and SAD see the +3 sd shift too, the trees do not.
        ("gaussian", 0, [SPIKE, SHIFT + 9]),
        ("gaussian", 1, [SPIKE, SHIFT + 6]),
        ("sad", 0, [SPIKE, SHIFT + 4]),
        ("sad", 1, [SPIKE, SHIFT + 3]),
        ("hst", 0, [SPIKE]),
        ("hst", 1, [SPIKE]),
    ],
)
def test_each_detector_pages_exactly_these_points(
    variant: str, seed: int, expected: list[int]
) -> None:
    detector, *settings = variant.split()
    overrides = ["drift.enabled=false", f"model.detector={detector}", *settings]
    config = load_config(EXAMPLE, overrides=overrides)
    fired = pages(config, spike_then_shift, 3 * DAY, seed)
    assert fired == [(i, "AnomalyDetected") for i in expected]
    assert pages(config, gaussian, 3 * DAY, seed) == []  # and the same noise without them


def test_the_model_still_pages_while_its_stream_drifts() -> None:
    # The example config with drift on: a +3 sd shift pages and opens a drift episode;
    # a spike six hours later, inside the episode, pages too (a model muted while its
    # stream drifts missed half of NAB's labelled anomalies: they are changes too).
    spike = SHIFT + 360

    def shift_then_spike(rng: random.Random, i: int) -> float:
        return gaussian(rng, i) + (15.0 if i >= SHIFT else 0.0) + (80.0 if i == spike else 0.0)

    fired = pages(load_config(EXAMPLE), shift_then_spike, 3 * DAY)
    drift = [i for i, name in fired if name == "DataDrift"]
    assert len(drift) == 1
    assert drift[0] < spike  # the episode is open at the spike
    assert [i for i, name in fired if name == "AnomalyDetected"] == [SHIFT + 1, spike]
