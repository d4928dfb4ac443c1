"""Stream state snapshots (`decide.state_codec`): versioned JSON of plain fields.

A stream restored from a snapshot continues exactly as if it had not stopped, in every
mode, with every detector and every rule type; nothing read from a snapshot is run
(a pickle, under either version's header, is refused without being unpickled); and no
bytes given to `restore` make it raise, or leave a state that makes the engine raise."""

from __future__ import annotations

import math
import pickle
import random
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anomalyd.config import parse_config
from anomalyd.decide import Engine
from anomalyd.decide.feedback import FeedbackRecord
from anomalyd.decide.state_codec import FORMAT, MAX_BYTES, PICKLE_FORMAT
from anomalyd.detect import Extremes
from anomalyd.detect.detectors import FEATURE_NAMES
from anomalyd.detect.rules import EWMoments
from anomalyd.domain import Alert, Event, FeedbackLabel, Verdict
from anomalyd.features import Features
from anomalyd.plain import read_float

URL = "http://anomalyd.test"
T0 = 1_700_000_000.0
STEP = 60.0
N = 600
#: Where the runs are cut: mid warm-up, in a rule's pending state, while alerts fire
#: (rule, model, absence), and in keep_firing_for.
CUTS = (37, 121, 250, 301, 305, 353, 404, 406, 470, 555)
GAP = range(340, 350)  # no events: the absence rule fires, and resolves at 350

RULES = """\
rules:
  - {name: High, type: above, threshold: 75, for: 2m, keep_firing_for: 3m}
  - {name: Low, type: below, threshold: 25, clear_threshold: 30}
  - {name: Jump, type: rate_of_change, max_rate: 0.2}
  - {name: Unusual, type: zscore, window: 60, threshold: 4}
  - {name: ErrorsHigh, type: above, field: errors, threshold: 30}
  - {name: Silent, type: absence, for: 5m}
"""


def config_text(mode: str, detector: str) -> str:
    return RULES + (
        f"model: {{mode: {mode}, detector: {detector}, warmup: 60, threshold: 0.5,"
        " seasonality: false,"
        " for: 1m, keep_firing_for: 2m}\n"
    )


def engine_for(text: str) -> Engine:
    config = parse_config(text)
    return Engine(config.rules, config.model, URL, config_version="v1")


def series(seed: int) -> list[tuple[float, float]]:
    """(value, errors) with noise, spikes, a dip, a level shift and jumps."""
    rng = random.Random(seed)
    points = [(50.0 + rng.gauss(0.0, 2.0), 5.0 + rng.gauss(0.0, 1.0)) for _ in range(N)]
    for i in (120, 121, 122, 123, 300, 301, 302, 303, 304, 305):
        points[i] = (90.0 + rng.random(), 40.0)
    for i in range(400, 410):
        points[i] = (10.0, points[i][1])
    for i in range(460, 500):
        points[i] = (70.0 + rng.gauss(0.0, 2.0), points[i][1])
    return points


Record = tuple[str, Any]


def step(engine: Engine, i: int, value: float, errors: float) -> list[Record]:
    """One minute: an absence check, then the point (none during the gap)."""
    now = T0 + i * STEP
    out: list[Record] = [("absence", alert) for alert in engine.check_absence(now)]
    if i in GAP:
        return out
    labels = {"team": "core"}
    judgement = engine.process(Event("s", now, {"value": value, "errors": errors}, labels), now)
    out += [("verdict", verdict) for verdict in judgement.verdicts]
    out += [("alert", alert) for alert in judgement.alerts]
    if i == 200:  # a label: the stream's feedback state is non-empty from here on
        record = FeedbackRecord(
            "id-1", "fp", "s", "AnomalyDetected", "model", FeedbackLabel.FALSE_POSITIVE, now
        )
        engine.record_feedback(record)
    return out


def run(text: str, points: list[tuple[float, float]], cuts: tuple[int, ...]) -> list[Record]:
    """The whole series; at each cut the stream moves to a fresh engine by snapshot."""
    engine, out = engine_for(text), []
    for i, (value, errors) in enumerate(points):
        if i in cuts:
            blob = engine.snapshot("s")
            assert blob is not None
            assert blob.startswith(FORMAT)
            engine = engine_for(text)
            assert engine.restore("s", blob)
            assert engine.snapshot("s") == blob  # nothing lost or changed on the way
            assert engine.take_orphans(T0 + i * STEP) == []
        out += step(engine, i, value, errors)
    return out


@pytest.mark.parametrize("detector", ["robust", "hst", "gaussian", "sad"])
@pytest.mark.parametrize("mode", ["rules", "shadow", "hybrid", "model"])
def test_a_restored_stream_continues_exactly_as_an_uninterrupted_one(
    mode: str, detector: str
) -> None:
    text = config_text(mode, detector)
    points = series(seed=len(mode) * 7 + len(detector))
    uninterrupted = run(text, points, cuts=())
    assert run(text, points, CUTS) == uninterrupted
    # The run is rich enough to mean something: every rule judged, alerts fired and ended.
    verdicts = [r for kind, r in uninterrupted if kind == "verdict"]
    alerts = [r for kind, r in uninterrupted if kind != "verdict"]
    assert isinstance(verdicts[0], Verdict)
    assert any(isinstance(a, Alert) and a.labels["alertname"] == "Silent" for a in alerts)
    if mode != "model":
        hits = {hit for v in verdicts for hit in v.rule_hits}
        assert {"High", "Low", "Jump", "ErrorsHigh"} <= hits
        # In hybrid mode the warm model speaks for the z-score rule, which still learns.
        assert mode == "hybrid" or "Unusual" in hits
    if mode in ("hybrid", "model"):
        assert any(v.warm for v in verdicts)
    if mode == "model" and detector in ("robust", "hst"):  # (the others page later)
        assert any(a.labels["alertname"] == "AnomalyDetected" for a in alerts)


def test_the_snapshot_is_versioned_json_of_plain_fields() -> None:
    engine = engine_for(config_text("hybrid", "robust"))
    for i, (value, errors) in enumerate(series(1)[:125]):  # High fires from 122
        step(engine, i, value, errors)
    blob = engine.snapshot("s")
    assert blob is not None
    header, _, body = blob.partition(b"\n")
    assert header == b"anomalyd-state-2"
    data = orjson.loads(body)
    assert data["mode"] == "hybrid"
    assert [r["rule"] for r in data["rules"]] == ["High", "Low", "Jump", "Unusual", "ErrorsHigh"]
    assert set(data["models"]) == {"value", "errors"}
    assert data["rules"][0]["tracked"]["alert"]["labels"]["alertname"] == "High"


# --- nothing in a snapshot runs -----------------------------------------------------------------

#: What the payload below does when unpickled: harmless, and visible.
RAN: list[str] = []


def mark(text: str) -> None:
    RAN.append(text)


class Payload:
    """A pickle that calls a function when loaded (as one calling os.system would)."""

    def __reduce__(self) -> tuple[Callable[[str], None], tuple[str]]:
        return mark, ("unpickled",)


@pytest.mark.parametrize("header", [PICKLE_FORMAT, FORMAT, b""])
def test_a_pickle_is_never_unpickled_whatever_its_header(header: bytes) -> None:
    payload = pickle.dumps(Payload())
    pickle.loads(payload)  # the payload is live: loading it runs it
    assert RAN == ["unpickled"]
    RAN.clear()

    engine = engine_for(config_text("hybrid", "robust"))
    assert engine.restore("s", header + payload) is False
    assert RAN == []
    assert engine.stream("s") is None
    reason = engine.refusal("s", header + payload)
    assert reason is not None
    assert RAN == []


def test_a_version_1_snapshot_is_refused_and_the_stream_starts_afresh() -> None:
    engine = engine_for(config_text("hybrid", "robust"))
    reason = engine.refusal("s", PICKLE_FORMAT + pickle.dumps({"mode": "hybrid"}))
    assert reason is not None
    assert "version 1" in reason
    assert engine.stream("s") is None


# --- hostile or broken snapshots never raise ------------------------------------------------------

ENGINE_TEXT = config_text("hybrid", "hst")


def valid_snapshot() -> bytes:
    engine = engine_for(ENGINE_TEXT)
    for i, (value, errors) in enumerate(series(5)[:210]):  # a label at 200
        step(engine, i, value, errors)
    blob = engine.snapshot("s")
    assert blob is not None
    return blob


VALID = valid_snapshot()


def survives(blob: bytes) -> None:
    """`restore` answers True or False, and a stream it restored goes on working."""
    engine = engine_for(ENGINE_TEXT)
    restored = engine.restore("s", blob)
    assert isinstance(restored, bool)
    if restored:
        engine.take_orphans(T0 + 210 * STEP)
        for i in range(210, 215):
            step(engine, i, 95.0 if i % 2 else 50.0, 40.0)
        engine.check_absence(T0 + 1000 * STEP)
        assert engine.snapshot("s") is not None
        engine.model_threshold("s")


@settings(max_examples=200)
@given(st.binary(max_size=2000), st.sampled_from([b"", FORMAT, PICKLE_FORMAT]))
def test_random_bytes_never_raise(body: bytes, header: bytes) -> None:
    survives(header + body)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(["inf", "-inf", "nan", "firing", "pending", "hybrid", "High"]),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=200)
@given(json_values)
def test_random_json_never_raises(value: Any) -> None:
    survives(FORMAT + orjson.dumps(value))


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document, containers included."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            found += paths(child, (*prefix, i))
    return found


VALID_DATA = orjson.loads(VALID[len(FORMAT) :])
VALID_PATHS = [p for p in paths(VALID_DATA) if p]


@settings(max_examples=300)
@given(st.lists(st.tuples(st.sampled_from(VALID_PATHS), json_values), min_size=1, max_size=3))
def test_a_snapshot_with_any_field_replaced_never_raises(
    changes: list[tuple[tuple[Any, ...], Any]],
) -> None:
    data = orjson.loads(VALID[len(FORMAT) :])
    for path, value in changes:
        place = data
        try:
            for key in path[:-1]:
                place = place[key]
            place[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed this place
    survives(FORMAT + orjson.dumps(data))


def leaves(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        return [leaf for key, child in value.items() for leaf in leaves(child, (*prefix, key))]
    if isinstance(value, list):
        return [leaf for i, child in enumerate(value) for leaf in leaves(child, (*prefix, i))]
    return [(prefix, value)]


def is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int | float) or value in ("inf", "-inf")


#: Every number in the snapshot (the model's trees excepted: thousands of masses).
NUMBER_PATHS = [
    path for path, value in leaves(VALID_DATA) if "trees" not in path and is_number(value)
]
any_number = (
    st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats()
    | st.sampled_from(["inf", "-inf", "nan", -1, 0, 2**62, 1e308, -1e308, 5e-324])
)


@settings(max_examples=300)
@given(st.lists(st.tuples(st.sampled_from(NUMBER_PATHS), any_number), min_size=1, max_size=4))
def test_a_snapshot_with_any_number_changed_never_raises(
    changes: list[tuple[tuple[Any, ...], Any]],
) -> None:
    """Well-formed but absurd: negative variances, huge counts, NaN means, ..."""
    data = orjson.loads(VALID[len(FORMAT) :])
    for path, value in changes:
        place = data
        for key in path[:-1]:
            place = place[key]
        place[path[-1]] = value if not isinstance(value, float) or math.isfinite(value) else "nan"
    survives(FORMAT + orjson.dumps(data))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("models", "value", "model", "likelihood", "recent"), [0.0] * 3),  # wrong length
        (("models", "value", "model", "features", "level"), [5, 50.0, -1.0]),  # var < 0
        (("models", "value", "model", "detector", "trees"), [{}]),  # not 10 trees
        (("rules", 0, "tracked", "phase"), "exploded"),
        (("rules", 0, "tracked", "since"), "inf"),
        (("last_seen",), None),
        (("mode",), "everything"),
        (("feedback", "seen"), ["x"] * 1000),
    ],
)
def test_a_malformed_snapshot_is_refused_saying_where(path: tuple[Any, ...], value: Any) -> None:
    data = orjson.loads(VALID[len(FORMAT) :])
    place = data
    for key in path[:-1]:
        place = place[key]
    place[path[-1]] = value
    engine = engine_for(ENGINE_TEXT)
    reason = engine.refusal("s", FORMAT + orjson.dumps(data))
    assert reason is not None
    assert str(path[0]) in reason
    assert engine.stream("s") is None


def test_a_snapshot_over_a_mebibyte_is_refused() -> None:
    engine = engine_for(ENGINE_TEXT)
    padding = b" " * MAX_BYTES
    assert engine.restore("s", VALID + padding) is False
    assert engine.restore("s", VALID) is True


# --- what the format relies on ----------------------------------------------------------------


def test_the_zscore_moments_are_rivers_to_the_bit() -> None:
    from river import stats

    rng = random.Random(3)
    for window in (2, 7, 60, 1000):
        alpha = 2.0 / (window + 1.0)
        mean, var, ours = stats.EWMean(alpha), stats.EWVar(alpha), EWMoments(alpha)
        for _ in range(2000):
            x = rng.choice([0.0, rng.gauss(0.0, 1.0) * 1e6, rng.gauss(50.0, 2.0), 1e150])
            mean.update(x)
            var.update(x)
            ours.update(x)
            assert (ours.mean, ours.get()) == (mean.get(), var.get())


def test_the_hst_feature_names_are_the_features() -> None:
    features = Features(1.0, 0.0, 0.0, 0.0, 0.0, 0, 1.0, 0.0)
    assert tuple(sorted(features.as_dict())) == FEATURE_NAMES


def test_non_finite_numbers_survive_the_round_trip() -> None:
    fresh = Extremes(0.1)  # nothing seen: the range is [inf, -inf]
    state = orjson.loads(orjson.dumps(fresh.state()))
    assert state == ["inf", "-inf"]
    again = Extremes(0.1)
    again.learn(3.0)
    again.load_state(state, "extremes")
    assert again.range == (math.inf, -math.inf)
    assert read_float("nan", "x") != read_float("nan", "x")  # NaN, as written


# --- restored under another config ---------------------------------------------------------------


def test_models_of_another_shape_start_afresh_and_their_alert_is_resolved() -> None:
    """As a reload that changes the detector does (`decide.reconcile`): the model's memory
    cannot go into a model built otherwise, and what it fired has no owner any more."""
    text = (
        "model: {mode: model, detector: robust, warmup: 60, threshold: 0.5, seasonality: false}\n"
    )
    before = engine_for(text)
    firing: list[str] = []
    for i, (value, _) in enumerate(series(2)):  # until the model fires (the spikes do)
        step(before, i, value, 5.0)
        state = before.stream("s")
        assert state is not None
        firing = sorted(
            m.tracked.alert.fingerprint for m in state.models.values() if m.tracked.alert
        )
        if firing:
            break
    assert firing
    blob = before.snapshot("s")
    assert blob is not None

    same = engine_for(text)
    assert same.restore("s", blob)
    assert same.take_orphans(T0) == []

    other = engine_for(text.replace("robust", "sad"))
    assert other.restore("s", blob)
    ended = other.take_orphans(T0 + N * STEP)
    assert sorted(a.fingerprint for a in ended) == firing
    assert {a.status.value for a in ended} == {"resolved"}
    restored = other.stream("s")
    assert restored is not None
    assert restored.models == {}  # rebuilt on each field's next point
    assert restored.events == state.events
