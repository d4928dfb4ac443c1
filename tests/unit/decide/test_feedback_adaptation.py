"""Feedback, pure: the precision estimate, the adaptation rule as a table, the bounds,
idempotency, the remembered window, and the record's JSON."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anomalyd.config import FeedbackSection
from anomalyd.decide.feedback import (
    FeedbackRecord,
    Recorded,
    StreamFeedback,
    Tally,
    effective_threshold,
    next_threshold,
    pooled_precision,
    precision,
    record,
)
from anomalyd.domain import FeedbackLabel

TP, FP = FeedbackLabel.TRUE_POSITIVE, FeedbackLabel.FALSE_POSITIVE
T0 = 1_795_341_600.0
SECTION = FeedbackSection(
    min_threshold=0.4,
    max_threshold=0.8,
    step=0.02,
    target_precision=0.8,
    min_labels=5,
    window=50,
    lower_after=3,
)


def tally(labels: str, streak: int | None = None) -> Tally:
    """'ttf' = two true positives, then a false positive (newest last)."""
    counted = Tally()
    for char in labels:
        counted.add(char == "t", window=SECTION.window)
    if streak is not None:
        counted.streak = streak
    return counted


def entry(label: FeedbackLabel, id: str = "id-1", detector: str = "model") -> FeedbackRecord:
    return FeedbackRecord(id, "cbd7812c83f6c53e", "s", "AnomalyDetected", detector, label, T0)


@pytest.mark.parametrize(
    ("true_positives", "labels", "expected"),
    [(0, 0, 0.5), (0, 3, 0.2), (3, 3, 0.8), (8, 10, 0.75), (99, 100, 100 / 102)],
)
def test_precision_has_a_beta_1_1_prior(true_positives: int, labels: int, expected: float) -> None:
    assert precision(true_positives, labels) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("labels", "label", "current", "expected", "why"),
    [
        ("ffff", FP, 0.5, None, "hold: fewer than min_labels (5)"),
        ("fffff", FP, 0.5, 0.52, "raise: 5 labels, precision 1/7 < 0.8"),
        ("tttttff", FP, 0.5, 0.52, "raise: precision 6/9 = 0.67 < 0.8"),
        ("ttttttttf", FP, 0.5, None, "hold: precision 9/11 = 0.82 >= 0.8"),
        ("ffffft", TP, 0.5, None, "hold: a true positive never raises"),
        ("fffff", FP, 0.8, None, "hold: at max_threshold"),
        ("fffff", FP, 0.79, 0.8, "raise: capped at max_threshold"),
        ("fffff", FP, 0.9, None, "hold: configured above the bounds, never further out"),
        ("fffff", FP, 0.3, 0.32, "raise: configured below the bounds, toward them"),
        ("ttttttt", TP, 0.5, 0.48, "lower: 7 in a row (>= 3), precision 8/9 >= 0.8"),
        ("tt", TP, 0.5, None, "hold: only 2 in a row"),
        ("fffffttt", TP, 0.5, None, "hold: 3 in a row but precision 4/10 < 0.8"),
        ("ttttttt", TP, 0.4, None, "hold: at min_threshold"),
        ("ttttttt", TP, 0.41, 0.4, "lower: capped at min_threshold"),
        ("ttttttt", TP, 0.3, None, "hold: configured below the bounds, never further out"),
        ("ttttttt", TP, 0.9, 0.88, "lower: configured above the bounds, toward them"),
    ],
)
def test_the_adaptation_rule(
    labels: str, label: FeedbackLabel, current: float, expected: float | None, why: str
) -> None:
    assert next_threshold(tally(labels), label, current, SECTION) == expected, why


def test_each_false_positive_below_target_raises_by_one_step() -> None:
    state, threshold, moves = StreamFeedback(), 0.5, []
    for i in range(8):
        done = record(state, entry(FP, f"id-{i}"), SECTION, threshold)
        if done.new_threshold is not None:
            threshold = done.new_threshold
        moves.append(threshold)
    assert moves == [0.5, 0.5, 0.5, 0.5, 0.52, 0.54, 0.56, 0.58]
    assert done.direction == "up"
    assert done.labels == 8
    assert done.precision == pytest.approx(1 / 10)


def test_lowering_is_slow_a_new_run_of_true_positives_each_time() -> None:
    state, threshold, moves = StreamFeedback(), 0.6, []
    for i in range(9):
        done = record(state, entry(TP, f"id-{i}"), SECTION, threshold)
        if done.new_threshold is not None:
            threshold = done.new_threshold
        moves.append(threshold)
    # lower_after = 3: the 3rd, 6th and 9th true positives in a row lower it.
    assert moves == [0.6, 0.6, 0.58, 0.58, 0.58, 0.56, 0.56, 0.56, 0.54]


def test_a_record_is_counted_once_per_id() -> None:
    state = StreamFeedback()
    first = record(state, entry(FP, "link:fp:false_positive:1"), SECTION, 0.5)
    again = record(state, entry(FP, "link:fp:false_positive:1"), SECTION, 0.5)
    assert not first.duplicate
    assert again == Recorded("model", FP, first.precision, 1, duplicate=True)
    assert state.tallies["model"].labels == 1


def test_the_ids_remembered_are_bounded() -> None:
    state = StreamFeedback()
    for i in range(300):
        record(state, entry(TP, f"id-{i}", detector="rules"), SECTION, None)
    assert len(state.seen) == 256
    assert state.seen[-1] == "id-299"


def test_only_the_last_window_labels_count() -> None:
    section = SECTION.model_copy(update={"window": 5})
    counted = Tally()
    for char in "fffffttttt":
        counted.add(char == "t", section.window)
    assert (counted.labels, counted.true_positives) == (5, 5)


@pytest.mark.parametrize(
    ("detector", "enabled", "threshold"),
    [("rules", True, 0.5), ("drift", True, 0.5), ("model", False, 0.5), ("model", True, None)],
)
def test_only_model_labels_move_and_only_when_enabled(
    detector: str, enabled: bool, threshold: float | None
) -> None:
    section = SECTION.model_copy(update={"enabled": enabled, "min_labels": 1})
    done = record(StreamFeedback(), entry(FP, detector=detector), section, threshold)
    assert done.new_threshold is None
    assert done.labels == 1  # counted all the same


@pytest.mark.parametrize(
    ("configured", "offset", "enabled", "expected"),
    [
        (0.5, 0.0, True, 0.5),
        (0.5, 0.1, True, 0.6),
        (0.5, 0.1, False, 0.5),  # disabled: the configured threshold; the offset is kept
        (0.75, 0.1, True, 0.8),  # a reload raised the base: the sum stays within the bounds
        (0.45, -0.1, True, 0.4),
        (0.9, -0.02, True, 0.88),  # configured outside: no further out than itself
        (0.9, 0.1, True, 0.9),
        (0.3, 0.02, True, 0.32),
    ],
)
def test_effective_threshold(
    configured: float, offset: float, enabled: bool, expected: float
) -> None:
    section = SECTION.model_copy(update={"enabled": enabled})
    assert effective_threshold(configured, offset, section) == pytest.approx(expected)


@given(
    labels=st.lists(st.booleans(), max_size=120),
    start=st.floats(0.0, 1.0),
)
def test_moves_are_one_step_and_never_leave_the_reachable_range(
    labels: list[bool], start: float
) -> None:
    state, threshold = StreamFeedback(), start
    low, high = min(start, SECTION.min_threshold), max(start, SECTION.max_threshold)
    for i, true_positive in enumerate(labels):
        done = record(state, entry(TP if true_positive else FP, f"id-{i}"), SECTION, threshold)
        if done.new_threshold is not None:
            assert abs(done.new_threshold - threshold) <= SECTION.step + 1e-9
            assert (done.new_threshold > threshold) == (not true_positive)
            threshold = done.new_threshold
        assert low - 1e-9 <= threshold <= high + 1e-9


def test_pooled_precision_per_detector() -> None:
    one, two = StreamFeedback(), StreamFeedback()
    one.tallies = {"model": tally("tf"), "rules": tally("ttt")}
    two.tallies = {"model": tally("ff")}
    assert pooled_precision([one, two]) == {
        "model": pytest.approx(2 / 6),
        "rules": pytest.approx(4 / 5),
    }


def test_the_record_round_trips_through_json() -> None:
    sent = FeedbackRecord(
        "id-1", "cbd7812c83f6c53e", "s", "AnomalyDetected", "model", FP, T0, "ops", "noise"
    )
    body = sent.to_json()
    assert body == {
        "id": "id-1",
        "fingerprint": "cbd7812c83f6c53e",
        "stream": "s",
        "alertname": "AnomalyDetected",
        "detector": "model",
        "label": "false_positive",
        "at": "2026-11-22T10:00:00.000Z",
        "by": "ops",
        "comment": "noise",
        "source": "api",
    }
    assert FeedbackRecord.from_json(body) == sent


@pytest.mark.parametrize(
    "change",
    [
        {"label": "maybe"},
        {"stream": ""},
        {"stream": 7},
        {"at": "yesterday"},
        {"by": 3},
        {"id": None},
    ],
)
def test_a_record_this_version_cannot_read_is_refused(change: dict[str, Any]) -> None:
    body = {**entry(FP).to_json(), **change}
    with pytest.raises(ValueError):  # noqa: PT011 (the message is the reason, any will do)
        FeedbackRecord.from_json(body)


def test_a_record_missing_a_key_is_refused() -> None:
    body = entry(FP).to_json()
    del body["fingerprint"]
    with pytest.raises(ValueError, match="fingerprint"):
        FeedbackRecord.from_json(body)
    with pytest.raises(ValueError, match="object"):
        FeedbackRecord.from_json([body])


def test_the_section_is_checked() -> None:
    with pytest.raises(ValueError, match="min_threshold"):
        FeedbackSection(min_threshold=0.9, max_threshold=0.5)
    with pytest.raises(ValueError, match="window"):
        FeedbackSection(min_labels=20, window=10)
