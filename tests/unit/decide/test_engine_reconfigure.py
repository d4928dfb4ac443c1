"""A config reload inside the engine (`Engine.reconfigure`, `decide.reconcile`): what the
streams keep, what they lose, and the alerts that must be resolved because nothing owns
them any more; and the same reconciliation when a snapshot from another config is
restored."""

from __future__ import annotations

import random
from collections.abc import Sequence

from anomalyd.config import AnomalydConfig, parse_config
from anomalyd.decide import Engine
from anomalyd.domain import VALUE_FIELD, Alert, AlertStatus, Event

URL = "http://anomalyd.test"
T0 = 1_700_000_000.0
FIRING, RESOLVED = AlertStatus.FIRING, AlertStatus.RESOLVED

ZSCORE = "{name: Unusual, type: zscore, threshold: 4, window: 100, min_samples: 30}"
HIGH = "{name: High, type: above, threshold: 500, severity: critical}"


def config(rules: Sequence[str] = (), model: str = "{mode: rules}") -> AnomalydConfig:
    return parse_config(f"rules: [{', '.join(rules)}]\nmodel: {model}\n")


def engine(cfg: AnomalydConfig, version: str = "v1") -> Engine:
    return Engine(cfg.rules, cfg.model, URL, config_version=version)


def reconfigure(e: Engine, cfg: AnomalydConfig, now: float, version: str = "v2") -> list[Alert]:
    return e.reconfigure(cfg.rules, cfg.model, now=now, config_version=version)


def feed(e: Engine, values: Sequence[float], start: int = 0, stream: str = "s") -> list[Alert]:
    changed = []
    for i, value in enumerate(values, start=start):
        ts = T0 + i
        changed.extend(e.process(Event(stream, ts, {VALUE_FIELD: value}), now=ts).alerts)
    return changed


def normal(n: int, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [100.0 + rng.gauss(0.0, 2.0) for _ in range(n)]


# --- rules ---------------------------------------------------------------------------------------


def test_an_unchanged_zscore_rule_keeps_its_memory() -> None:
    e = engine(config([ZSCORE, HIGH]))
    assert feed(e, normal(40)) == []
    # Another rule changes; the z-score rule does not.
    changed = HIGH.replace("500", "400")
    assert reconfigure(e, config([ZSCORE, changed]), now=T0 + 40) == []
    [spike] = feed(e, [130.0], start=40)  # its 40 points still count: min_samples is met
    assert spike.labels["alertname"] == "Unusual"
    assert spike.annotations["config_version"] == "v2"


def test_a_changed_zscore_rule_starts_its_memory_again() -> None:
    e = engine(config([ZSCORE]))
    feed(e, normal(40))
    reconfigure(e, config([ZSCORE.replace("threshold: 4", "threshold: 5")]), now=T0 + 40)
    assert feed(e, [130.0], start=40) == []  # no statistics yet: min_samples is 30


def test_a_lowered_threshold_takes_effect_on_the_next_event() -> None:
    e = engine(config([HIGH]))
    assert feed(e, [450.0]) == []
    assert reconfigure(e, config([HIGH.replace("500", "400")]), now=T0 + 1) == []
    [fired] = feed(e, [450.0], start=1)
    assert fired.status is FIRING
    assert fired.annotations["expected"] == "<= 400"
    assert fired.annotations["config_version"] == "v2"


def test_a_removed_rule_resolves_its_firing_alert() -> None:
    e = engine(config([HIGH, ZSCORE]))
    [fired] = feed(e, [900.0])
    assert fired.annotations["config_version"] == "v1"
    [ended] = reconfigure(e, config([ZSCORE]), now=T0 + 30)
    assert ended.status is RESOLVED
    assert ended.fingerprint == fired.fingerprint
    assert ended.ends_at == T0 + 30
    assert ended.annotations["config_version"] == "v2"
    assert feed(e, [900.0, 100.0], start=1) == []  # nothing left to fire or resolve


def test_a_changed_rule_resolves_its_alert_and_fires_anew_as_the_new_rule() -> None:
    e = engine(config([HIGH]))
    [fired] = feed(e, [900.0])
    [ended] = reconfigure(e, config([HIGH.replace("critical", "warning")]), now=T0 + 1)
    assert (ended.status, ended.fingerprint) == (RESOLVED, fired.fingerprint)
    [again] = feed(e, [900.0], start=1)
    assert again.labels["severity"] == "warning"
    assert again.fingerprint != fired.fingerprint


def test_an_unchanged_firing_rule_keeps_firing_without_a_new_alert() -> None:
    e = engine(config([HIGH]))
    [fired] = feed(e, [900.0])
    assert reconfigure(e, config([HIGH, ZSCORE]), now=T0 + 1) == []
    [ended] = feed(e, [900.0, 100.0], start=1)
    assert (ended.status, ended.fingerprint) == (RESOLVED, fired.fingerprint)


def test_a_removed_absence_rule_resolves_its_alert() -> None:
    silent = "{name: Silent, type: absence, for: 10s}"
    e = engine(config([silent]))
    feed(e, [1.0])
    [fired] = e.check_absence(now=T0 + 60)
    [ended] = reconfigure(e, config([]), now=T0 + 70)
    assert (ended.status, ended.fingerprint, ended.ends_at) == (
        RESOLVED,
        fired.fingerprint,
        T0 + 70,
    )
    assert e.check_absence(now=T0 + 200) == []


def test_new_rules_apply_to_known_streams() -> None:
    e = engine(config([]))
    feed(e, [900.0])
    reconfigure(e, config([HIGH]), now=T0 + 1)
    [fired] = feed(e, [900.0], start=1)
    assert fired.labels["alertname"] == "High"


def test_a_mode_where_rules_no_longer_page_resolves_their_alerts() -> None:
    e = engine(config([HIGH]))
    [fired] = feed(e, [900.0])
    [ended] = reconfigure(e, config([HIGH], "{mode: model}"), now=T0 + 1)
    assert (ended.status, ended.fingerprint) == (RESOLVED, fired.fingerprint)


# --- the model ------------------------------------------------------------------------------------

HYBRID = "{mode: hybrid, threshold: 0.5, warmup: 50, seasonality: false}"


def warm_engine() -> Engine:
    e = engine(config([], HYBRID))
    feed(e, normal(80))
    return e


def test_a_threshold_change_keeps_the_model_and_its_warm_up() -> None:
    e = warm_engine()
    state = e.stream("s")
    assert state is not None
    model = state.models[VALUE_FIELD].model
    assert reconfigure(e, config([], HYBRID.replace("0.5", "0.7")), now=T0 + 80) == []
    assert state.models[VALUE_FIELD].model is model
    assert model.learned == 80
    assert state.threshold == 0.7


def test_overrides_set_each_streams_mode_and_threshold_again() -> None:
    e = warm_engine()
    overrides = (
        "{mode: hybrid, warmup: 50, seasonality: false,"
        " overrides: [{streams: ['s'], mode: shadow, threshold: 0.9}]}"
    )
    reconfigure(e, config([], overrides), now=T0 + 80)
    state = e.stream("s")
    assert state is not None
    assert (state.mode, state.threshold) == ("shadow", 0.9)


def test_a_new_detector_rebuilds_the_models() -> None:
    e = warm_engine()
    reconfigure(e, config([], HYBRID.replace("hybrid", "hybrid, detector: sad")), now=T0 + 80)
    state = e.stream("s")
    assert state is not None
    assert state.models == {}
    feed(e, normal(1), start=80)
    assert state.models[VALUE_FIELD].model.learned == 1  # learning again


def test_a_firing_model_alert_is_resolved_when_its_model_stops_paging() -> None:
    e = warm_engine()
    [fired] = feed(e, [400.0], start=80)
    assert fired.labels["detector"] == "model"
    [ended] = reconfigure(e, config([], HYBRID.replace("hybrid", "shadow")), now=T0 + 81)
    assert (ended.status, ended.fingerprint) == (RESOLVED, fired.fingerprint)


def test_a_renamed_model_alert_is_resolved() -> None:
    e = warm_engine()
    [fired] = feed(e, [400.0], start=80)
    renamed = HYBRID.replace("}", ", alertname: Odd}")
    [ended] = reconfigure(e, config([], renamed), now=T0 + 81)
    assert (ended.status, ended.fingerprint) == (RESOLVED, fired.fingerprint)


# --- restore under another config -----------------------------------------------------------------


def test_a_snapshot_from_another_config_is_brought_in_line_on_restore() -> None:
    before = engine(config([HIGH, ZSCORE]))
    [fired] = feed(before, [900.0])
    blob = before.snapshot("s")
    assert blob is not None

    after = engine(config([ZSCORE, HIGH.replace("500", "1000")]), version="v2")
    assert after.restore("s", blob)
    [ended] = after.take_orphans(now=T0 + 5)
    assert (ended.status, ended.fingerprint, ended.ends_at) == (RESOLVED, fired.fingerprint, T0 + 5)
    assert after.take_orphans(now=T0 + 6) == []
    assert feed(after, [900.0], start=1) == []  # the new threshold is 1000
