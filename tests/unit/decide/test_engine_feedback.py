"""Feedback inside the engine: set_threshold decides the next verdict, labels move a
stream's threshold, and the adaptation survives a reload and a snapshot."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from anomalyd.config import ModelSection, parse_config
from anomalyd.decide import Engine
from anomalyd.decide.feedback import FeedbackRecord
from anomalyd.domain import VALUE_FIELD, Alert, AlertStatus, Event, FeedbackLabel

URL = "http://anomalyd.test"
T0 = 1_700_000_000.0
SPIKE_AT = 400
SHIFT = 3  # points
MODEL = (
    "model:\n"
    "  mode: model\n  threshold: 0.5\n  warmup: 100\n  seasonality: false\n"
    "  range_tolerance: 100\n"  # the likelihood alone: a score between 0.5 and 1
    "  feedback: {min_threshold: 0.4, max_threshold: 0.9, step: 0.05, min_labels: 2,"
    " lower_after: 2}\n"
)


def engine_for(text: str = MODEL) -> Engine:
    config = parse_config(text)
    return Engine(config.rules, config.model, URL)


def values(seed: int = 1, n: int = 500, spike: float = 12.0) -> list[float]:
    rng = random.Random(seed)
    points = [50.0 + rng.gauss(0.0, 2.0) for _ in range(n)]
    points[SPIKE_AT : SPIKE_AT + SHIFT] = [50.0 + spike] * SHIFT  # a short level shift
    return points


def replay(engine: Engine, points: Sequence[float], start: int = 0) -> list[tuple[int, Alert]]:
    alerts = []
    for i, value in enumerate(points, start=start):
        ts = T0 + 60.0 * i
        alerts += [(i, a) for a in engine.process(Event("s", ts, {VALUE_FIELD: value}), ts).alerts]
    return alerts


def label(kind: FeedbackLabel, n: int, detector: str = "model") -> FeedbackRecord:
    return FeedbackRecord(f"id-{n}", "cbd7812c83f6c53e", "s", "AnomalyDetected", detector, kind, T0)


def spike_score() -> float:
    """The highest score of the shifted points (each scores higher than the last)."""
    engine = engine_for()
    replay(engine, values()[:SPIKE_AT])
    scores = []
    for i in range(SPIKE_AT, SPIKE_AT + SHIFT):
        ts = T0 + 60.0 * i
        [verdict] = engine.process(Event("s", ts, {VALUE_FIELD: values()[i]}), ts).verdicts
        assert verdict.model_score is not None
        scores.append(verdict.model_score)
    assert scores == sorted(scores)
    return scores[-1]


@pytest.mark.parametrize(("nudge", "fires"), [(-0.001, True), (0.001, False)])
def test_set_threshold_decides_the_next_verdict(nudge: float, fires: bool) -> None:
    score = spike_score()
    assert 0.5 < score < 0.85  # a shift (6 sd) the configured threshold catches
    engine = engine_for()
    replay(engine, values()[:SPIKE_AT])
    assert engine.set_threshold("s", score + nudge)
    assert engine.model_threshold("s") == pytest.approx(score + nudge)
    alerts = replay(engine, values()[SPIKE_AT : SPIKE_AT + SHIFT], start=SPIKE_AT)
    fired = [a for _, a in alerts if a.status is AlertStatus.FIRING]
    assert bool(fired) is fires
    if fires:
        assert fired[0].annotations["threshold"] == f"{score + nudge:g}"


def test_set_threshold_on_an_unknown_stream_says_so() -> None:
    assert engine_for().set_threshold("nobody", 0.7) is False
    assert engine_for().model_threshold("nobody") is None


def test_false_positives_raise_the_threshold_and_later_alerts_show_it() -> None:
    engine = engine_for()
    replay(engine, values()[:50])
    moves = [engine.record_feedback(label(FeedbackLabel.FALSE_POSITIVE, n)) for n in range(3)]
    assert [m.new_threshold if m else None for m in moves] == [None, 0.55, 0.6]
    assert engine.model_threshold("s") == pytest.approx(0.6)
    state = engine.stream("s")
    assert state is not None
    assert state.threshold == 0.5  # the configured one is kept apart
    # A big spike still fires, and says at which threshold.
    alerts = replay(engine, values(spike=60.0)[50:], start=50)
    assert alerts[0][1].annotations["threshold"] == "0.6"


def test_a_label_for_an_unknown_stream_or_a_rule_leaves_thresholds_alone() -> None:
    engine = engine_for()
    assert engine.record_feedback(label(FeedbackLabel.FALSE_POSITIVE, 0)) is None
    replay(engine, values()[:10])
    for n in range(5):
        engine.record_feedback(label(FeedbackLabel.FALSE_POSITIVE, n, detector="rules"))
    assert engine.model_threshold("s") == 0.5


def adapted(engine: Engine) -> Engine:
    replay(engine, values()[:50])
    for n in range(3):
        engine.record_feedback(label(FeedbackLabel.FALSE_POSITIVE, n))
    assert engine.model_threshold("s") == pytest.approx(0.6)
    return engine


FEEDBACK = "{min_threshold: 0.4, max_threshold: 0.9, step: 0.05, min_labels: 2, lower_after: 2}"


@pytest.mark.parametrize(
    ("threshold", "feedback", "expected"),
    [
        (0.5, FEEDBACK, 0.6),  # nothing changed: the adaptation stays
        (0.7, FEEDBACK, 0.8),  # the configured threshold moved: the offset stays on top
        (0.88, FEEDBACK, 0.9),  # ... within max_threshold
        (0.5, "{enabled: false}", 0.5),  # set aside while disabled
    ],
)
def test_a_reload_keeps_the_adaptation_on_top_of_the_configured_threshold(
    threshold: float, feedback: str, expected: float
) -> None:
    engine = adapted(engine_for())
    new = parse_config(
        f"model: {{mode: model, threshold: {threshold}, warmup: 100, seasonality: false,"
        f" feedback: {feedback}}}\n"
    )
    engine.reconfigure(new.rules, new.model, now=T0)
    assert engine.model_threshold("s") == pytest.approx(expected)
    state = engine.stream("s")
    assert state is not None
    assert state.threshold == threshold


def test_the_adaptation_is_in_the_snapshot() -> None:
    engine = adapted(engine_for())
    blob = engine.snapshot("s")
    assert blob is not None
    restored = engine_for()
    assert restored.restore("s", blob)
    assert restored.model_threshold("s") == pytest.approx(0.6)
    # ... and so are the ids applied: a redelivered record is not counted again.
    again = restored.record_feedback(label(FeedbackLabel.FALSE_POSITIVE, 2))
    assert again is not None
    assert again.duplicate


def test_a_snapshot_from_before_any_label_restores_without_feedback() -> None:
    engine = engine_for()
    replay(engine, values()[:50])
    blob = engine.snapshot("s")
    assert blob is not None
    restored = engine_for()
    assert restored.restore("s", blob)
    again = restored.stream("s")
    assert again is not None
    assert again.feedback is None
    assert restored.model_threshold("s") == 0.5


def test_the_default_section_adapts_within_0_4_and_0_8() -> None:
    section = ModelSection()
    assert section.feedback.enabled
    assert (section.feedback.min_threshold, section.feedback.max_threshold) == (0.4, 0.8)
