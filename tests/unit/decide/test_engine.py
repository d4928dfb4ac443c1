"""The engine in `rules` mode: seeded synthetic streams with spikes at known points and the
exact alerts they must produce; rule matching, fields, labels, absence and forgetting.
(The model and the modes are in test_engine_model.py.)"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pytest
from pydantic import TypeAdapter

from anomalyd.clock import ManualClock
from anomalyd.config import ModelSection, Rule
from anomalyd.decide import Engine as _Engine
from anomalyd.decide import fingerprint
from anomalyd.domain import VALUE_FIELD, Alert, AlertStatus, Event

URL = "http://anomalyd.test:6066"
T0 = 1_700_000_000.0
FIRING, RESOLVED = AlertStatus.FIRING, AlertStatus.RESOLVED
_RULES = TypeAdapter(list[Rule])


class Engine:
    """The engine with the model off, answering with the alerts that changed."""

    def __init__(self, rules: Sequence[Rule], external_url: str) -> None:
        self._engine = _Engine(rules, ModelSection(mode="rules"), external_url)

    def process(self, event: Event, now: float) -> list[Alert]:
        return self._engine.process(event, now).alerts

    def check_absence(self, now: float) -> list[Alert]:
        return self._engine.check_absence(now)

    def forget(self, streams: Iterable[str]) -> None:
        self._engine.forget(streams)

    @property
    def stream_count(self) -> int:
        return self._engine.stream_count

    def streams(self) -> list[str]:
        return self._engine.streams()


def rules(*specs: Mapping[str, Any]) -> list[Any]:
    """Rules as the config file writes them (so `for` and durations parse as users write them)."""
    return _RULES.validate_python([dict(s) for s in specs])


def event(stream: str, ts: float, value: float | None = None, **kw: Any) -> Event:
    fields = kw.pop("fields", None)
    values = fields if fields is not None else {VALUE_FIELD: value}
    return Event(stream, ts, values, kw.pop("labels", {}))


def series(
    stream: str, values: Sequence[float], start: float = T0, step: float = 1.0
) -> list[Event]:
    return [event(stream, start + i * step, v) for i, v in enumerate(values)]


def gaussian(seed: int, n: int, mean: float = 50.0, std: float = 2.0) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(mean, std) for _ in range(n)]


def with_spikes(values: list[float], spikes: Mapping[int, float]) -> list[float]:
    out = list(values)
    for index, value in spikes.items():
        out[index] = value
    return out


def run(engine: Engine, events: Iterable[Event]) -> list[tuple[int, Alert]]:
    """(index of the event that changed it, alert) for every alert the engine emits."""
    out = []
    for i, e in enumerate(events):
        out.extend((i, alert) for alert in engine.process(e, now=e.ts))
    return out


def summary(changes: Iterable[tuple[int, Alert]]) -> list[tuple[int, str, str]]:
    return [(i, a.labels["alertname"], a.status.value) for i, a in changes]


# --- seeded streams with exact expected alerts --------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_above_rule_on_a_seeded_stream(seed: int) -> None:
    values = with_spikes(gaussian(seed, 200), {60: 90.0, 120: 95.0, 121: 96.0, 122: 97.0})
    engine = Engine(rules({"name": "high", "type": "above", "threshold": 80}), URL)
    changes = run(engine, series("cpu", values))
    assert summary(changes) == [
        (60, "high", "firing"),
        (61, "high", "resolved"),
        (120, "high", "firing"),
        (123, "high", "resolved"),
    ]
    (_, fired), (_, ended) = changes[2], changes[3]
    assert fired.starts_at == T0 + 120
    assert fired.ends_at is None
    assert ended.starts_at == T0 + 120
    assert ended.ends_at == T0 + 123
    assert fired.annotations["value"] == "95"


def test_for_filters_a_single_spike() -> None:
    values = with_spikes(gaussian(4, 200), {60: 90.0, 120: 95.0, 121: 96.0, 122: 97.0})
    engine = Engine(rules({"name": "high", "type": "above", "threshold": 80, "for": "2s"}), URL)
    changes = run(engine, series("cpu", values))
    assert summary(changes) == [(122, "high", "firing"), (123, "high", "resolved")]
    assert changes[0][1].starts_at == T0 + 120  # startsAt is when the condition began


def test_keep_firing_for_bridges_a_gap() -> None:
    values = with_spikes(gaussian(5, 100), {30: 90.0, 32: 90.0, 50: 90.0})
    engine = Engine(
        rules({"name": "high", "type": "above", "threshold": 80, "keep_firing_for": "5s"}), URL
    )
    assert summary(run(engine, series("cpu", values))) == [
        (30, "high", "firing"),
        (38, "high", "resolved"),  # clear from 33: 38 - 33 >= 5
        (50, "high", "firing"),
        (56, "high", "resolved"),
    ]


def test_hysteresis_keeps_an_alert_firing_until_clear_threshold() -> None:
    values = [50.0, 85.0, 79.0, 71.0, 69.0, 79.0, 50.0]
    engine = Engine(
        rules({"name": "high", "type": "above", "threshold": 80, "clear_threshold": 70}), URL
    )
    assert summary(run(engine, series("cpu", values))) == [
        (1, "high", "firing"),
        (4, "high", "resolved"),
    ]


@pytest.mark.parametrize("seed", [10, 11, 12])
def test_zscore_on_a_seeded_stream(seed: int) -> None:
    values = with_spikes(gaussian(seed, 400), {150: 80.0, 300: 15.0})
    engine = Engine(
        rules({"name": "odd", "type": "zscore", "threshold": 6, "min_samples": 30}), URL
    )
    changes = run(engine, series("latency", values))
    assert summary(changes) == [
        (150, "odd", "firing"),
        (151, "odd", "resolved"),
        (300, "odd", "firing"),
        (301, "odd", "resolved"),
    ]
    assert changes[0][1].annotations["rule"] == "zscore"


def test_rate_of_change_on_a_seeded_stream() -> None:
    values = with_spikes(gaussian(6, 100, std=0.5), {40: 70.0})
    engine = Engine(rules({"name": "jump", "type": "rate_of_change", "max_rate": 5}), URL)
    # up into the spike, down out of it (still violated), then back to normal
    assert summary(run(engine, series("q", values))) == [
        (40, "jump", "firing"),
        (42, "jump", "resolved"),
    ]


def test_several_rules_on_one_stream_are_independent() -> None:
    values = with_spikes(gaussian(7, 100), {20: 90.0, 70: 5.0})
    engine = Engine(
        rules(
            {"name": "high", "type": "above", "threshold": 80},
            {"name": "low", "type": "below", "threshold": 20},
        ),
        URL,
    )
    assert summary(run(engine, series("cpu", values))) == [
        (20, "high", "firing"),
        (21, "high", "resolved"),
        (70, "low", "firing"),
        (71, "low", "resolved"),
    ]


def test_streams_are_independent() -> None:
    engine = Engine(rules({"name": "high", "type": "above", "threshold": 80}), URL)
    events = [
        event("a", T0, 90.0),
        event("b", T0, 10.0),
        event("b", T0 + 1, 90.0),
        event("a", T0 + 1, 10.0),
    ]
    changes = run(engine, events)
    assert [(i, a.labels["stream"], a.status.value) for i, a in changes] == [
        (0, "a", "firing"),
        (2, "b", "firing"),
        (3, "a", "resolved"),
    ]
    assert sorted(engine.streams()) == ["a", "b"]
    assert engine.stream_count == 2


# --- the alert itself ---------------------------------------------------------------------------


def test_fired_alert_content() -> None:
    engine = Engine(
        rules({"name": "high", "type": "above", "threshold": 80, "severity": "critical"}), URL
    )
    [alert] = engine.process(event("cpu", T0, 91.25, labels={"host": "h1"}), now=T0 + 0.5)
    assert alert.status is FIRING
    assert alert.labels == {
        "host": "h1",
        "alertname": "high",
        "stream": "cpu",
        "severity": "critical",
        "detector": "rules",
    }
    assert alert.annotations == {
        "summary": "cpu: 91.25 is above 80",
        "description": "Rule high (above) on cpu: 91.25 is above 80.",
        "value": "91.25",
        "expected": "<= 80",
        "rule": "above",
        "detector": "rules",
    }
    assert alert.starts_at == T0  # event time, not arrival time
    assert alert.fingerprint == fingerprint(alert.labels)
    assert alert.generator_url == f"{URL}/api/alerts/{alert.fingerprint}"


def test_fingerprint_is_stable_between_firing_and_resolved() -> None:
    engine = Engine(rules({"name": "high", "type": "above", "threshold": 80}), URL)
    [fired] = engine.process(event("cpu", T0, 90.0, labels={"host": "h1"}), now=T0)
    # the labels of the clearing event differ; the resolved alert keeps the firing identity
    [ended] = engine.process(event("cpu", T0 + 1, 10.0, labels={"host": "h2"}), now=T0 + 1)
    assert ended.status is RESOLVED
    assert ended.fingerprint == fired.fingerprint
    assert ended.labels == fired.labels
    assert ended.generator_url == fired.generator_url
    assert ended.starts_at == fired.starts_at


def test_reserved_labels_cannot_be_overridden_by_events() -> None:
    engine = Engine(
        rules(
            {"name": "high", "type": "above", "threshold": 80},
            {"name": "hot", "type": "above", "threshold": 80, "field": "temp"},
        ),
        URL,
    )
    forged = {
        "alertname": "other",
        "stream": "elsewhere",
        "severity": "info",
        "detector": "fake",
        "field": "bogus",
        "team": "db",
    }
    alerts = engine.process(Event("cpu", T0, {VALUE_FIELD: 90.0, "temp": 95.0}, forged), now=T0)
    by_name = {a.labels["alertname"]: a for a in alerts}
    assert set(by_name) == {"high", "hot"}
    for alert in alerts:
        assert alert.labels["stream"] == "cpu"
        assert alert.labels["severity"] == "warning"
        assert alert.labels["detector"] == "rules"
        assert alert.labels["team"] == "db"
    assert by_name["hot"].labels["field"] == "temp"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{stream} is {value} (want {expected})", "cpu is 91.5 (want <= 80)"),
        ("{field}: {reason}", "value: 91.5 is above 80"),
        ("{unknown} {stream}", "{unknown} cpu"),
        ("{0.__class__} {stream.__class__}", "{0.__class__} {stream.__class__}"),
        ("no placeholders", "no placeholders"),
        ("{{stream}}", "{cpu}"),
    ],
)
def test_summary_template(template: str, expected: str) -> None:
    engine = Engine(
        rules({"name": "high", "type": "above", "threshold": 80, "summary": template}), URL
    )
    [alert] = engine.process(event("cpu", T0, 91.5), now=T0)
    assert alert.annotations["summary"] == expected


def test_summary_placeholders_are_not_reinterpreted_from_event_values() -> None:
    engine = Engine(
        rules({"name": "high", "type": "above", "threshold": 80, "summary": "{stream}"}), URL
    )
    [alert] = engine.process(event("x{reason}", T0, 91.5), now=T0)
    assert alert.annotations["summary"] == "x{reason}"


# --- rules to streams ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("globs", "stream", "matches"),
    [
        (["*"], "anything", True),
        (["cpu.*"], "cpu.host1", True),
        (["cpu.*"], "mem.host1", False),
        (["cpu.*"], "cpu", False),
        (["*.host1"], "cpu.host1", True),
        (["cpu.host?"], "cpu.host1", True),
        (["cpu.host?"], "cpu.host10", False),
        (["cpu.host[12]"], "cpu.host2", True),
        (["cpu.host[12]"], "cpu.host3", False),
        (["CPU.*"], "cpu.host1", False),  # case-sensitive
        (["mem.*", "cpu.*"], "cpu.host1", True),
        (["a/b/*"], "a/b/c/d", True),
    ],
)
def test_rules_match_streams_by_glob(globs: list[str], stream: str, matches: bool) -> None:
    engine = Engine(
        rules({"name": "high", "type": "above", "threshold": 80, "streams": globs}), URL
    )
    fired = engine.process(event(stream, T0, 90.0), now=T0)
    assert bool(fired) is matches


def test_a_stream_without_matching_rules_is_tracked_quietly() -> None:
    engine = Engine(
        rules({"name": "high", "type": "above", "threshold": 80, "streams": ["x"]}), URL
    )
    assert engine.process(event("y", T0, 90.0), now=T0) == []
    assert engine.streams() == ["y"]


# --- fields -------------------------------------------------------------------------------------


def test_field_rule_judges_its_field_and_labels_the_alert() -> None:
    engine = Engine(
        rules(
            {"name": "slow", "type": "above", "threshold": 500, "field": "p99_ms"},
            {"name": "errors", "type": "above", "threshold": 0.05, "field": "error_rate"},
            {"name": "plain", "type": "above", "threshold": 0},
        ),
        URL,
    )
    events = [
        event("api", T0, fields={"p99_ms": 120.0, "error_rate": 0.01}),
        event("api", T0 + 1, fields={"p99_ms": 900.0, "error_rate": 0.01}),
        event("api", T0 + 2, fields={"p99_ms": 950.0, "error_rate": 0.2}),
        event("api", T0 + 3, fields={"p99_ms": 100.0}),  # error_rate missing: no verdict
        event("api", T0 + 4, fields={"error_rate": 0.0}),
    ]
    changes = run(engine, events)
    assert summary(changes) == [
        (1, "slow", "firing"),
        (2, "errors", "firing"),
        (3, "slow", "resolved"),
        (4, "errors", "resolved"),
    ]
    slow = changes[0][1]
    assert slow.labels["field"] == "p99_ms"
    assert slow.annotations["summary"] == "api: 900 is above 500"


def test_value_rule_has_no_field_label() -> None:
    engine = Engine(rules({"name": "high", "type": "above", "threshold": 80}), URL)
    [alert] = engine.process(event("cpu", T0, 90.0), now=T0)
    assert "field" not in alert.labels


def test_field_rule_alerts_differ_from_value_rule_alerts() -> None:
    engine = Engine(
        rules({"name": "high", "type": "above", "threshold": 80, "field": "a", "streams": ["*"]}),
        URL,
    )
    [a] = engine.process(event("s", T0, fields={"a": 90.0}), now=T0)
    other = Engine(rules({"name": "high", "type": "above", "threshold": 80}), URL)
    [b] = other.process(event("s", T0, 90.0), now=T0)
    assert a.fingerprint != b.fingerprint


# --- absence ------------------------------------------------------------------------------------


def test_absence_fires_after_silence_and_resolves_on_the_next_event() -> None:
    clock = ManualClock(T0)
    engine = Engine(rules({"name": "quiet", "type": "absence", "for": "30s"}), URL)
    assert engine.process(event("hb", T0 - 5, 1.0, labels={"host": "h1"}), clock.now()) == []
    fired = []
    for step in [10, 10, 10, 0.5, 0.5, 10]:
        clock.advance(step)
        fired.append(engine.check_absence(clock.now()))
    # silent for 10, 20, 30 (not more than 30), 30.5 (fires), 31, 41 (already firing)
    assert [len(f) for f in fired] == [0, 0, 0, 1, 0, 0]
    [alert] = fired[3]
    assert alert.status is FIRING
    assert alert.labels == {
        "host": "h1",
        "alertname": "quiet",
        "stream": "hb",
        "severity": "warning",
        "detector": "rules",
    }
    assert alert.starts_at == T0 + 30  # last seen + for
    assert alert.annotations["summary"] == "hb: no event for more than 30s"
    assert alert.annotations["rule"] == "absence"
    clock.advance(5)
    [ended] = engine.process(event("hb", T0 + 40, 1.0), clock.now())
    assert ended.status is RESOLVED
    assert ended.fingerprint == alert.fingerprint
    assert ended.ends_at == clock.now()  # arrival time: absence is about arrival
    assert engine.check_absence(clock.now() + 30) == []
    assert len(engine.check_absence(clock.now() + 30.1)) == 1


def test_absence_is_measured_from_arrival_not_event_time() -> None:
    engine = Engine(rules({"name": "quiet", "type": "absence", "for": 60}), URL)
    engine.process(event("hb", T0 - 3600, 1.0), now=T0)  # an old event arriving now
    assert engine.check_absence(T0 + 60) == []
    assert len(engine.check_absence(T0 + 61)) == 1


def test_absence_per_stream_and_by_glob() -> None:
    engine = Engine(
        rules({"name": "quiet", "type": "absence", "for": 10, "streams": ["hb.*"]}), URL
    )
    engine.process(event("hb.a", T0, 1.0), now=T0)
    engine.process(event("hb.b", T0, 1.0), now=T0 + 5)
    engine.process(event("other", T0, 1.0), now=T0)
    assert [a.labels["stream"] for a in engine.check_absence(T0 + 11)] == ["hb.a"]
    assert [a.labels["stream"] for a in engine.check_absence(T0 + 16)] == ["hb.b"]
    assert engine.check_absence(T0 + 1000) == []


def test_a_never_seen_stream_has_no_absence() -> None:
    engine = Engine(rules({"name": "quiet", "type": "absence", "for": 10}), URL)
    assert engine.check_absence(T0) == []


def test_absence_and_value_rules_together() -> None:
    engine = Engine(
        rules(
            {"name": "quiet", "type": "absence", "for": 10},
            {"name": "high", "type": "above", "threshold": 80},
        ),
        URL,
    )
    engine.process(event("s", T0, 90.0), now=T0)
    [absent] = engine.check_absence(T0 + 20)
    changes = engine.process(event("s", T0 + 20, 10.0), now=T0 + 20)
    assert sorted((a.labels["alertname"], a.status.value) for a in changes) == [
        ("high", "resolved"),
        ("quiet", "resolved"),
    ]
    assert absent.labels["alertname"] == "quiet"


# --- forget -------------------------------------------------------------------------------------


def test_forget_drops_state() -> None:
    engine = Engine(
        rules(
            {"name": "high", "type": "above", "threshold": 80},
            {"name": "quiet", "type": "absence", "for": 10},
        ),
        URL,
    )
    engine.process(event("a", T0, 90.0), now=T0)
    engine.process(event("b", T0, 10.0), now=T0)
    engine.forget(["a", "never-seen"])
    assert engine.streams() == ["b"]
    # no absence for the forgotten stream, and its rule state starts over
    assert [x.labels["stream"] for x in engine.check_absence(T0 + 11)] == ["b"]
    [again] = engine.process(event("a", T0 + 12, 95.0), now=T0 + 12)
    assert again.status is FIRING
    assert again.starts_at == T0 + 12


def test_forget_resets_rule_memory() -> None:
    engine = Engine(rules({"name": "jump", "type": "rate_of_change", "max_rate": 1}), URL)
    engine.process(event("a", T0, 0.0), now=T0)
    engine.forget(["a"])
    assert engine.process(event("a", T0 + 1, 100.0), now=T0 + 1) == []  # no previous point
