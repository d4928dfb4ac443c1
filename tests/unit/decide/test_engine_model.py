"""The online model inside the engine: seeded from the rules, warm-up, calibration,
the four modes, per-stream overrides, and snapshot/restore."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anomalyd.config import Mode, ModelSection, parse_config
from anomalyd.decide import Engine
from anomalyd.decide.engine import _verdict_score
from anomalyd.detect import AnomalyLikelihood, Extremes
from anomalyd.detect.likelihood import log10_upper_tail
from anomalyd.domain import VALUE_FIELD, Alert, AlertStatus, Event, Verdict

URL = "http://anomalyd.test"
T0 = 1_700_000_000.0
SPIKE_AT = 400


def gaussian_with_spike(
    seed: int, n: int = 500, spike_at: int = SPIKE_AT, spike: float = 30.0
) -> list[float]:
    rng = random.Random(seed)
    values = [50.0 + rng.gauss(0.0, 2.0) for _ in range(n)]
    values[spike_at] = 50.0 + spike
    return values


def engine_for(yaml_text: str) -> Engine:
    config = parse_config(yaml_text)
    return Engine(config.rules, config.model, URL)


def replay(
    engine: Engine, values: Sequence[float], stream: str = "s", step: float = 60.0
) -> tuple[list[Verdict], list[tuple[int, Alert]]]:
    verdicts, alerts = [], []
    for i, value in enumerate(values):
        ts = T0 + i * step
        judgement = engine.process(Event(stream, ts, {VALUE_FIELD: value}), now=ts)
        verdicts.extend(judgement.verdicts)
        alerts.extend((i, alert) for alert in judgement.alerts)
    return verdicts, alerts


def summary(alerts: list[tuple[int, Alert]]) -> list[tuple[int, str, str]]:
    return [(i, a.labels["alertname"], a.status.value) for i, a in alerts]


MODEL_ONLY = "model: {mode: model, threshold: 0.5, warmup: 100, seasonality: false}\n"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_model_fires_on_a_spike_and_nothing_else(seed: int) -> None:
    _, alerts = replay(engine_for(MODEL_ONLY), gaussian_with_spike(seed))
    assert summary(alerts) == [
        (SPIKE_AT, "AnomalyDetected", "firing"),  # beyond the range seen so far
        (SPIKE_AT + 1, "AnomalyDetected", "resolved"),  # one point does not move the likelihood
    ]
    fired = alerts[0][1]
    assert fired.labels["detector"] == "model"
    assert fired.annotations["model"] == "robust"
    assert float(fired.annotations["score"]) >= 0.5
    assert fired.annotations["value"] == f"{gaussian_with_spike(seed)[SPIKE_AT]:.6g}"


def test_the_model_cannot_alert_before_it_is_warm() -> None:
    values = gaussian_with_spike(1, n=200, spike_at=50)
    verdicts, alerts = replay(
        engine_for("model: {mode: model, threshold: 0.5, warmup: 100, seasonality: false}\n"),
        values,
    )
    assert alerts == []
    assert verdicts[50].warm is False
    assert verdicts[50].model_score == 0.0
    assert verdicts[150].warm is True


def test_the_model_learns_only_what_the_rules_call_normal() -> None:
    # A rule flags everything above 60: those points must not shape the model.
    rules = "rules: [{name: high, type: above, threshold: 60}]\n"
    values = [50.0 + (i % 3) for i in range(200)] + [100.0] * 50 + [50.0] * 10
    engine = engine_for(rules + "model: {mode: shadow, warmup: 20, seasonality: false}\n")
    verdicts, _ = replay(engine, values)
    series = engine.stream("s")
    assert series is not None
    assert series.models[VALUE_FIELD].model.learned == 210  # the 50 flagged points were skipped
    assert verdicts[200].rule_hits == ("high",)
    assert verdicts[200].score == 1.0


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("rules", [(SPIKE_AT, "high", "firing"), (SPIKE_AT + 1, "high", "resolved")]),
        ("shadow", [(SPIKE_AT, "high", "firing"), (SPIKE_AT + 1, "high", "resolved")]),
        # One page per incident: the model keeps quiet while the threshold rule pages.
        ("hybrid", [(SPIKE_AT, "high", "firing"), (SPIKE_AT + 1, "high", "resolved")]),
        (
            "model",
            [
                (SPIKE_AT, "AnomalyDetected", "firing"),
                (SPIKE_AT + 1, "AnomalyDetected", "resolved"),
            ],
        ),
    ],
)
def test_modes_decide_who_pages(mode: str, expected: list[tuple[int, str, str]]) -> None:
    engine = engine_for(
        "rules: [{name: high, type: above, threshold: 70}]\n"
        f"model: {{mode: {mode}, threshold: 0.5, warmup: 100, seasonality: false}}\n"
    )
    verdicts, alerts = replay(engine, gaussian_with_spike(1))
    assert summary(alerts) == expected
    if mode == "rules":
        assert all(v.model_score is None for v in verdicts)
    else:
        assert (verdicts[SPIKE_AT].model_score or 0.0) >= 0.5


def test_overrides_pick_the_mode_and_threshold_by_stream() -> None:
    engine = engine_for(
        "model:\n  mode: hybrid\n  threshold: 0.5\n  warmup: 100\n  seasonality: false\n"
        "  overrides:\n"
        "    - {streams: ['quiet.*'], mode: shadow}\n"
        "    - {streams: ['strict.*'], threshold: 1.0}\n"
    )
    values = gaussian_with_spike(1)
    assert summary(replay(engine, values, "quiet.a")[1]) == []
    # At threshold 1.0 only the highest score pages: a value beyond the range seen so far.
    strict = replay(engine, values, "strict.a")[1]
    assert [(i, a.annotations["threshold"]) for i, a in strict[:1]] == [(SPIKE_AT, "1")]
    assert [s for _, s, _ in summary(replay(engine, values, "other")[1])] == ["AnomalyDetected"] * 2
    state = engine.stream("strict.a")
    assert state is not None
    assert (state.mode, state.threshold) == ("hybrid", 1.0)


def test_each_field_of_a_multivariate_stream_has_its_own_model() -> None:
    engine = engine_for(MODEL_ONLY)
    rng = random.Random(5)
    alerts: list[Alert] = []
    for i in range(500):
        fields = {"latency": 100 + rng.gauss(0, 3), "errors": 5 + rng.gauss(0, 1)}
        if i == SPIKE_AT:
            fields["errors"] = 40.0
        alerts += engine.process(Event("api", T0 + 60 * i, fields), now=T0 + 60 * i).alerts
    assert [(a.labels.get("field"), a.status) for a in alerts] == [
        ("errors", AlertStatus.FIRING),
        ("errors", AlertStatus.RESOLVED),
    ]


def test_the_same_input_gives_the_same_scores() -> None:
    values = gaussian_with_spike(7)
    for detector in ("robust", "hst"):
        text = f"model: {{mode: shadow, detector: {detector}, warmup: 50, seasonality: false}}\n"
        first, _ = replay(engine_for(text), values)
        second, _ = replay(engine_for(text), values)
        assert [v.model_score for v in first] == [v.model_score for v in second]


@pytest.mark.parametrize("detector", ["robust", "gaussian", "sad", "hst"])
def test_a_restored_snapshot_continues_exactly_where_it_stopped(detector: str) -> None:
    text = (
        "rules: [{name: z, type: zscore}]\n"
        f"model: {{mode: hybrid, detector: {detector}, warmup: 50, seasonality: false}}\n"
    )
    values = gaussian_with_spike(3)
    uninterrupted, _ = replay(engine_for(text), values)

    first = engine_for(text)
    before, _ = replay(first, values[:250])
    blob = first.snapshot("s")
    assert blob is not None
    second = engine_for(text)
    assert second.restore("s", blob)
    after = []
    for i, value in enumerate(values[250:], start=250):
        after.extend(
            second.process(
                Event("s", T0 + i * 60.0, {VALUE_FIELD: value}), now=T0 + i * 60.0
            ).verdicts
        )
    assert [v.model_score for v in before + after] == [v.model_score for v in uninterrupted]


def test_a_snapshot_of_another_version_is_refused() -> None:
    engine = engine_for(MODEL_ONLY)
    assert engine.snapshot("nobody") is None
    assert engine.restore("s", b"something else entirely") is False
    assert engine.stream("s") is None


def test_scores_mean_the_same_on_any_scale() -> None:
    # The same shape of noise at scales 1e-3 and 1e6 gives the same scores.
    def scores(scale: float) -> list[float]:
        values = [scale * v for v in gaussian_with_spike(11)]
        verdicts, _ = replay(
            engine_for("model: {mode: shadow, warmup: 50, seasonality: false}\n"), values
        )
        return [v.model_score or 0.0 for v in verdicts]

    small, large = scores(1e-3), scores(1e6)
    assert max(abs(a - b) for a, b in zip(small, large, strict=True)) < 1e-6
    normal = [s for i, s in enumerate(large) if i >= 50 and i not in range(SPIKE_AT, SPIKE_AT + 10)]
    assert max(normal) < 0.5  # no normal point reaches the default threshold
    assert large[SPIKE_AT] == max(large) == 1.0  # beyond the range shown so far


@given(
    st.lists(
        st.one_of(st.floats(0.0, 1e300), st.sampled_from([math.inf, math.nan, -1.0])),
        min_size=1,
        max_size=200,
    )
)
def test_likelihood_scores_stay_in_0_1_whatever_the_raw_scores(raws: list[float]) -> None:
    likelihood = AnomalyLikelihood(short=10, long=50)
    for raw in raws:
        score = likelihood.score(raw)
        assert 0.0 <= score <= 1.0


def test_one_noisy_point_does_not_page_a_sustained_change_does() -> None:
    rng = random.Random(5)
    likelihood = AnomalyLikelihood(short=10, long=500)
    for _ in range(600):
        likelihood.score(abs(rng.gauss(0.0, 1.0)))
    # One raw score of 4 (a 4-sigma point) among ordinary ones: the recent mean barely moves.
    assert likelihood.score(4.0) < 0.5
    sustained = [likelihood.score(4.0) for _ in range(9)]
    assert max(sustained) >= 0.5


def test_extremes_are_learned_online_with_a_margin() -> None:
    extremes = Extremes(tolerance=0.05)
    assert not extremes.beyond(1e9)  # nothing seen: no range yet
    for value in (10.0, 20.0, 15.0):
        extremes.learn(value)
    assert extremes.range == (10.0, 20.0)
    assert not extremes.beyond(20.4)  # within 5% of the span (0.5)
    assert extremes.beyond(20.6)
    assert extremes.beyond(9.4)
    extremes.learn(math.inf)  # not a value: ignored
    assert extremes.range == (10.0, 20.0)


def test_default_model_section_is_valid() -> None:
    assert ModelSection().mode == "hybrid"


@pytest.mark.parametrize(
    ("z", "decades"),
    [(0.0, 0.30103), (3.0, 2.8697), (10.0, 23.1181), (30.0, 197.3092), (40.0, 349.437)],
)
def test_log_tail_is_accurate_far_into_the_tail(z: float, decades: float) -> None:
    assert -log10_upper_tail(z) == pytest.approx(decades, rel=1e-3)


@pytest.mark.parametrize(
    ("mode", "rule_hit", "model_score", "expected"),
    [
        ("rules", True, None, 1.0),
        ("shadow", False, 0.9, 0.0),  # measured, never pages: not in the verdict
        ("shadow", True, 0.2, 1.0),
        ("hybrid", False, 0.7, 0.7),
        ("hybrid", True, 0.2, 1.0),
        ("model", True, 0.2, 0.2),  # rules only seed the model here
        ("model", False, 0.0, 0.0),
    ],
)
def test_the_verdict_score_comes_from_whoever_may_page(
    mode: Mode, rule_hit: bool, model_score: float | None, expected: float
) -> None:
    assert _verdict_score(mode, rule_hit, model_score) == expected


def test_an_overflowing_value_does_not_blind_the_model() -> None:
    # One value of 1e308 before the statistics have a scale would make them infinite,
    # and every later z-score 0: the shift that comes later must still page.
    values = gaussian_with_spike(4, n=600, spike_at=0, spike=0.0)
    values[1] = 1e308
    values[450:480] = [v + 40.0 for v in values[450:480]]
    verdicts, alerts = replay(engine_for(MODEL_ONLY), values)
    assert all(math.isfinite(v.model_score or 0.0) for v in verdicts)
    fired = [i for i, a in alerts if a.status is AlertStatus.FIRING]
    assert len(fired) == 1
    assert 450 <= fired[0] < 460


def test_an_alert_says_whether_the_value_left_the_range_seen() -> None:
    _, alerts = replay(engine_for(MODEL_ONLY), gaussian_with_spike(1))
    assert "beyond the range this stream has shown" in alerts[0][1].annotations["summary"]
