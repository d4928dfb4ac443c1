"""Rules carry `labels:` and `annotations:`, templated with the alert's values as
Prometheus rules are, safely (placeholders only, no code) and bounded."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from anomalyd.config import ConfigError, ModelSection, Rule, parse_config, template
from anomalyd.decide import Engine
from anomalyd.domain import VALUE_FIELD, Event

URL = "http://anomalyd.test:6066"
T0 = 1_700_000_000.0
_RULES = TypeAdapter(list[Rule])
LABELS = {"stream": "cpu", "region": "eu"}
FACTS = {"value": "91.5", "expected": "<= 80", "stream": "cpu"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ $value }} in {{ $labels.region }}", "91.5 in eu"),
        ("{{$value}}/{{.Value}}/{{ .Labels.stream }}", "91.5/91.5/cpu"),
        ("{{ $labels.missing }}|", "|"),  # an unknown label is empty, as in Prometheus
        ("{stream} {region} {value} {unknown}", "cpu eu 91.5 {unknown}"),
        ("{{stream}}", "{cpu}"),  # what `summary` always did
        ("{{ $value | humanize }}", "{{ $value | humanize }}"),  # no functions: left as written
    ],
)
def test_templates_fill_placeholders_only(text: str, expected: str) -> None:
    assert template.render(text, LABELS, FACTS, 1000) == expected


def test_values_are_not_expanded_again_and_the_result_is_bounded() -> None:
    labels = {"a": "{{ $value }}" + "x" * 5000}
    out = template.render("{{ $labels.a }}{{ $labels.a }}", labels, FACTS, 100)
    assert out.startswith("{{ $value }}xxx")
    assert len(out) == 100
    assert out.endswith("…")


@given(st.text(max_size=80), st.dictionaries(st.text(max_size=5), st.text(max_size=5)))
def test_render_never_fails(text: str, labels: dict[str, str]) -> None:
    assert isinstance(template.render(text, labels, labels, 200), str)


@pytest.mark.parametrize(
    ("rule_extra", "problem"),
    [
        ({"labels": {"severity": "x"}}, "label 'severity' is set by anomalyd itself"),
        ({"labels": {"alertname": "x"}}, "label 'alertname' is set by anomalyd itself"),
        ({"labels": {"bad-name": "x"}}, "'bad-name' is not a label name"),
        ({"labels": {"v": "{{ $value }}"}}, "a label may not use it"),
        ({"labels": {"v": "{value}"}}, "a label may not use it"),
        ({"annotations": {"detector": "x"}}, "annotation 'detector' is set by anomalyd itself"),
        ({"annotations": {"x": "{{ $value | humanize }}"}}, "unsupported template"),
        ({"summary": "a", "annotations": {"summary": "b"}}, "set the summary once"),
    ],
)
def test_rule_labels_and_annotations_are_checked(rule_extra: dict[str, Any], problem: str) -> None:
    rule = {"name": "high", "type": "above", "threshold": 80, **rule_extra}
    with pytest.raises(ConfigError) as raised:
        parse_config(f"rules: [{_flow(rule)}]\n")
    assert any(problem in p for p in raised.value.problems), raised.value.problems


def _flow(mapping: dict[str, Any]) -> str:
    import json

    return json.dumps(mapping)


def _engine(**rule_extra: Any) -> Engine:
    spec = {"name": "high", "type": "above", "threshold": 80, **rule_extra}
    return Engine(_RULES.validate_python([spec]), ModelSection(mode="rules"), URL)


def test_a_rule_adds_its_labels_and_rendered_annotations_to_its_alerts() -> None:
    engine = _engine(
        labels={"team": "payments", "region": "from-rule", "where": "{{ $labels.region }}"},
        annotations={
            "runbook_url": "https://runbooks.example.com/{{ $labels.alertname }}?s={stream}",
            "description": "{{ $labels.stream }} at {{ $value }}, expected {expected}",
        },
    )
    event = Event("cpu", T0, {VALUE_FIELD: 91.5}, {"region": "eu", "host": "h1"})
    [alert] = engine.process(event, now=T0).alerts
    assert alert.labels == {
        "alertname": "high",
        "stream": "cpu",
        "severity": "warning",
        "detector": "rules",
        "team": "payments",
        "region": "from-rule",  # the rule wins over the event, as in Prometheus
        "where": "eu",  # rendered from the event's labels
        "host": "h1",
    }
    assert alert.annotations["runbook_url"] == "https://runbooks.example.com/high?s=cpu"
    assert alert.annotations["description"] == "cpu at 91.5, expected <= 80"
    assert alert.annotations["summary"] == "cpu: 91.5 is above 80"
    assert alert.annotations["detector"] == "rules"


def test_an_absence_rule_carries_them_too() -> None:
    spec = {
        "name": "silent",
        "type": "absence",
        "for": "10s",
        "labels": {"team": "search"},
        "annotations": {"summary": "{{ $labels.stream }} went quiet", "runbook_url": "r/{stream}"},
    }
    engine = Engine(_RULES.validate_python([spec]), ModelSection(mode="rules"), URL)
    engine.process(Event("cpu", T0, {VALUE_FIELD: 1.0}, {}), now=T0)
    [alert] = engine.check_absence(T0 + 11)
    assert alert.labels["team"] == "search"
    assert alert.annotations["summary"] == "cpu went quiet"
    assert alert.annotations["runbook_url"] == "r/cpu"
