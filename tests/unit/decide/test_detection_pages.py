"""What the default detection pages on seeded synthetic streams, exactly: the pages people
would get from the example config (`config/anomalyd.yaml`), one event a minute."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from anomalyd.config import AnomalydConfig, load_config
from anomalyd.decide import Engine
from anomalyd.domain import VALUE_FIELD, AlertStatus, Event

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "anomalyd.yaml"
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY = 1440  # events


@pytest.fixture(scope="module")
def config() -> AnomalydConfig:
    return load_config(EXAMPLE, overrides=["drift.enabled=false"])


def pages(
    config: AnomalydConfig, make: Callable[[random.Random, int], float], n: int, seed: int = 0
) -> list[tuple[int, str]]:
    """(event index, alertname) of every alert that starts firing on stream `api.x`."""
    engine = Engine(config.rules, config.model, "http://anomalyd.test")
    rng = random.Random(seed)
    fired = []
    for i in range(n):
        ts = T0 + 60.0 * i
        alerts = engine.process(Event("api.x", ts, {VALUE_FIELD: make(rng, i)}), now=ts).alerts
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
