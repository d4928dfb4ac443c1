"""The pipeline (engine + drift): drift-aware detection and drift status on alerts."""

from __future__ import annotations

import random

from anomalyd.config import parse_config
from anomalyd.decide import Engine
from anomalyd.domain import VALUE_FIELD, Alert, Event
from anomalyd.pipeline import Pipeline

T0 = 1_700_000_000.0 - 1_700_000_000.0 % 60

CONFIG = """
model: {{mode: model, warmup: 100, seasonality: false, threshold: 0.5, keep_firing_for: 5s}}
drift: {{window: 60s, grace: 0s, min_count: 50, fallback_to_rules: {fallback}}}
"""


def run(fallback: bool) -> tuple[Pipeline, list[Alert]]:
    """8 windows of N(100, 5), then a lasting shift to N(300, 5): 100 points per window."""
    pipeline = Pipeline(parse_config(CONFIG.format(fallback=str(fallback).lower())))
    rng = random.Random(9)
    alerts: list[Alert] = []
    for i in range(2000):
        ts = T0 + 0.6 * i
        value = rng.gauss(100 if i < 800 else 300, 5)
        alerts += pipeline.process(Event("api", ts, {VALUE_FIELD: value}), now=ts).alerts
    return pipeline, alerts


def model_alerts_after(alerts: list[Alert], ts: float) -> list[Alert]:
    return [a for a in alerts if a.labels["detector"] == "model" and a.starts_at >= ts]


def test_a_drifting_stream_falls_back_to_the_rules_and_the_model_rebaselines() -> None:
    pipeline, alerts = run(fallback=True)
    drift = [a for a in alerts if a.labels["alertname"] == "DataDrift"]
    assert [a.status.value for a in drift] == ["firing", "resolved"]  # one episode
    assert pipeline.drift is not None
    assert not pipeline.drift.is_drifting("api")  # settled at the new level
    model = [(a.status.value, a) for a in alerts if a.labels["detector"] == "model"]
    # The shift pages once (before drift is confirmed); once it is, the untrusted model's
    # page resolves, and nothing pages again while it re-learns the new regime.
    assert [status for status, _ in model] == ["firing", "resolved"]
    assert model[1][1].ends_at is not None
    assert model[1][1].ends_at <= (drift[1].ends_at or 0.0)


def test_an_untrusted_model_does_not_page_and_its_open_page_resolves() -> None:
    trusted = {"api": True}
    config = parse_config("model: {mode: model, warmup: 100, seasonality: false, threshold: 0.5}")
    engine = Engine(config.rules, config.model, "http://x", untrusted=lambda s: not trusted[s])
    rng = random.Random(3)

    def feed(i: int, value: float) -> list[Alert]:
        return engine.process(Event("api", T0 + i, {VALUE_FIELD: value}), now=T0 + i).alerts

    for i in range(300):
        feed(i, rng.gauss(100, 5))
    [page] = feed(300, 1000.0)  # a trusted model pages on an extreme point
    assert page.status.value == "firing"
    trusted["api"] = False  # its data drifts: the model is no longer trusted
    [ended] = feed(301, 1000.0)
    assert (ended.status.value, ended.fingerprint) == ("resolved", page.fingerprint)
    assert feed(302, 5000.0) == []  # and it does not page while untrusted
