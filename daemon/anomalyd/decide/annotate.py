"""What an alert says: its identity labels and its explanation, per kind of detector."""

from __future__ import annotations

from collections.abc import Mapping

from anomalyd.config import AbsenceRule, ModelSection, Rule, template
from anomalyd.config.schema import MAX_ANNOTATION_CHARS, MAX_LABEL_CHARS
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


def rule_identity(rule: Rule, stream: str, field: str, labels: Mapping[str, str]) -> dict[str, str]:
    """The identity of a rule's alert: the event's labels, the rule's `labels:` (rendered
    from those; they win over the event's), then ours."""
    own = identity(rule.name, stream, rule.severity.value, RULES, field, labels)
    if not rule.labels:
        return own
    facts = {"stream": stream, "field": field}
    added = {
        name: template.render(text, own, facts, MAX_LABEL_CHARS)
        for name, text in rule.labels.items()
    }
    return identity(rule.name, stream, rule.severity.value, RULES, field, {**labels, **added})


def _with_rule_annotations(
    rule: Rule, base: dict[str, str], labels: Mapping[str, str], facts: Mapping[str, str]
) -> dict[str, str]:
    """`base` with the rule's `annotations:` rendered over it (a rule may word its own
    summary or description)."""
    summary = rule.summary or "{stream}: {reason}"
    base["summary"] = template.render(summary, labels, facts, MAX_ANNOTATION_CHARS)
    for name, text in rule.annotations.items():
        base[name] = template.render(text, labels, facts, MAX_ANNOTATION_CHARS)
    return base


def rule_annotations(
    rule: Rule, stream: str, field: str, check: Check, labels: Mapping[str, str]
) -> dict[str, str]:
    facts = {
        "stream": stream,
        "field": field,
        "value": f"{check.value:.6g}",
        "expected": check.expected,
        "reason": check.reason,
    }
    base = {
        "summary": "",  # first, as Alertmanager users expect to read it
        "description": f"Rule {rule.name} ({rule.type}) on {stream}: {check.reason}.",
        "value": facts["value"],
        "expected": check.expected,
        "rule": rule.type,
        "detector": RULES,
    }
    return _with_rule_annotations(rule, base, labels, facts)


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


def absence_annotations(
    rule: AbsenceRule, stream: str, labels: Mapping[str, str]
) -> dict[str, str]:
    expected = f"an event at least every {rule.for_:g}s"
    facts = {
        "stream": stream,
        "reason": f"no event for more than {rule.for_:g}s",
        "expected": expected,
    }
    base = {
        "summary": "",
        "description": f"Rule {rule.name} (absence) on {stream}: {facts['reason']}.",
        "expected": expected,
        "rule": "absence",
        "detector": RULES,
    }
    return _with_rule_annotations(rule, base, labels, facts)
