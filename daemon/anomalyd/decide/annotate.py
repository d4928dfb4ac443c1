"""What an alert says: its identity labels and its explanation, per kind of detector."""

from __future__ import annotations

from collections.abc import Mapping

from anomalyd.alert import render_summary
from anomalyd.config import AbsenceRule, ModelSection, Rule
from anomalyd.detect import Check, ModelScore
from anomalyd.domain import VALUE_FIELD

RULES = "rules"
MODEL = "model"


def identity(
    alertname: str, stream: str, severity: str, detector: str, field: str, labels: Mapping[str, str]
) -> dict[str, str]:
    """Event labels first, then ours: an event cannot override the identity."""
    result = {**labels, "alertname": alertname, "stream": stream}
    result["severity"] = severity
    result["detector"] = detector
    if field != VALUE_FIELD:
        result["field"] = field
    return result


def rule_annotations(rule: Rule, stream: str, field: str, check: Check) -> dict[str, str]:
    facts = {
        "stream": stream,
        "field": field,
        "value": f"{check.value:.6g}",
        "expected": check.expected,
        "reason": check.reason,
    }
    return {
        "summary": render_summary(rule.summary or "{stream}: {reason}", facts),
        "description": f"Rule {rule.name} ({rule.type}) on {stream}: {check.reason}.",
        "value": facts["value"],
        "expected": check.expected,
        "rule": rule.type,
        "detector": RULES,
    }


def model_annotations(
    section: ModelSection, stream: str, field: str, scored: ModelScore, threshold: float
) -> dict[str, str]:
    value = f"{scored.features.value:.6g}"
    where = stream if field == VALUE_FIELD else f"{stream} {field}"
    why = "beyond the range this stream has shown" if scored.beyond_range else "unusual"
    reason = f"{value} is {why} (expected {scored.expected}), score {scored.score:.3f}"
    return {
        "summary": f"{where}: {reason}",
        "description": (
            f"The {section.detector} model of {where} scores this point {scored.score:.3f} "
            f">= threshold {threshold:g} (raw {scored.raw:.3g})."
        ),
        "value": value,
        "expected": scored.expected,
        "score": f"{scored.score:.3f}",
        "threshold": f"{threshold:g}",
        "model": section.detector,
        "detector": MODEL,
    }


def absence_annotations(rule: AbsenceRule, stream: str) -> dict[str, str]:
    facts = {"stream": stream, "reason": f"no event for more than {rule.for_:g}s"}
    return {
        "summary": render_summary(rule.summary or "{stream}: {reason}", facts),
        "description": f"Rule {rule.name} (absence) on {stream}: {facts['reason']}.",
        "expected": f"an event at least every {rule.for_:g}s",
        "rule": "absence",
        "detector": RULES,
    }
