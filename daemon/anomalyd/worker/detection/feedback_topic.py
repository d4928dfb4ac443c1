"""Feedback in the worker: each record of the feedback topic applied to the stream it is
about, by the worker that owns the stream.

The feedback topic is keyed by stream and has the partition count of the by-stream topic,
so Faust assigns its partitions to workers together with the by-stream partitions of the
same numbers (co-partitioned, as for a table's changelog): the worker that judges a stream
reads its labels, applies them to the stream's state (`Engine.record_feedback`), and the
state topic keeps them with the rest of the stream's state.
"""

from __future__ import annotations

from typing import Any

import orjson
import structlog

from anomalyd.decide import Engine
from anomalyd.decide.feedback import FeedbackRecord, pooled_precision, summary
from anomalyd.metrics import Metrics

_log = structlog.get_logger(__name__)


def apply_feedback(engine: Engine, metrics: Metrics, raw: bytes | None) -> str | None:
    """Apply one record of the feedback topic; returns the stream whose state changed."""
    try:
        record = FeedbackRecord.from_json(orjson.loads(raw or b""))
    except ValueError as error:  # orjson's decode error is a ValueError too
        _log.warning("feedback_record_unreadable", reason=str(error))
        return None
    log = _log.bind(stream=record.stream, fingerprint=record.fingerprint, detector=record.detector)
    recorded = engine.record_feedback(record)
    if recorded is None:
        log.warning("feedback_stream_unknown", label=record.label.value, id=record.id)
        return None
    if recorded.duplicate:
        log.info("feedback_duplicate", id=record.id)
        return None
    metrics.feedback.labels(record.detector, record.label.value).inc()
    log.info(
        "feedback_applied",
        label=record.label.value,
        source=record.source,
        by=record.by,
        precision=round(recorded.precision, 4),
        labels=recorded.labels,
    )
    if recorded.direction is not None:
        metrics.threshold_adaptations.labels(recorded.direction).inc()
        log.info(
            "threshold_adapted",
            old=recorded.old_threshold,
            new=recorded.new_threshold,
            direction=recorded.direction,
            precision=round(recorded.precision, 4),
            labels=recorded.labels,
        )
    return record.stream


def publish_precision(engine: Engine, metrics: Metrics) -> None:
    """Set the precision gauge from the labels of the streams this worker has now."""
    states = [s.feedback for s in map(engine.stream, engine.streams()) if s and s.feedback]
    metrics.feedback_precision.clear()
    for detector, value in pooled_precision(states).items():
        metrics.feedback_precision.labels(detector).set(value)


def feedback_status(engine: Engine, stream: str) -> dict[str, Any] | None:
    """A stream's model threshold and labels, if this worker owns the stream."""
    state = engine.stream(stream)
    if state is None:
        return None
    return {
        "stream": stream,
        "model_threshold": engine.model_threshold(stream),
        "configured_threshold": state.threshold,
        "threshold_offset": state.feedback.threshold_offset if state.feedback else 0.0,
        "detectors": summary(state.feedback),
    }
