"""A stream's state as bytes and back: versioned JSON of plain fields, never code.

Snapshots travel through Kafka (`worker.detection.snapshots`), so reading one must not run
anything, whoever wrote it. A snapshot is the line `anomalyd-state-2` and one JSON
object of plain values (`anomalyd.plain`):

    mode, threshold, last_seen, events, labels
    rules:    [{rule, config, check, tracked}]   a value rule's memory and life cycle
    absences: [{rule, config, alert}]
    model:    the digest of the model's shape (`reconcile.model_shape`)
    models:   {field: {model, tracked}}           each field's online model
    feedback: null, or the labels and the threshold adaptation (`decide.feedback`)

    tracked:  {phase, since, clear_since, alert}
    alert:    null, or {labels, annotations, status, starts_at, ends_at, fingerprint,
              generator_url}

Rules and the model section are not in it: the current config supplies them. A rule is
named with a digest of its definition (`config`), and its memory is bound again to the
current config's rule of that name when the digest matches. A rule that changed or went
away loses its memory, and so do the models when their shape changed: what they fired
is returned (`Restored.orphans`) for the caller to resolve, as a reload would
(`decide.reconcile`, which then brings the rest in line with the current config).

Migration: version 1 (`anomalyd-state-1`) was a pickle, which would run whatever its
writer put in it. It is never read: a stream whose snapshot has that version starts
afresh (its rules and model learn again), and the worker logs it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import get_args

import orjson
from pydantic import BaseModel

from anomalyd.config import AbsenceRule, Mode, ModelSection, Rule, ValueRule
from anomalyd.decide.feedback import StreamFeedback
from anomalyd.decide.lifecycle import INACTIVE, AlertState, Phase
from anomalyd.decide.reconcile import model_shape
from anomalyd.decide.streams import Absence, ModelSeries, RuleSeries, StreamState, Tracked
from anomalyd.domain import Alert, AlertStatus
from anomalyd.plain import (
    Plain,
    StateError,
    number,
    read_finite,
    read_int,
    read_labels,
    read_list,
    read_object,
    read_optional_finite,
    read_str,
    required,
)

#: The header of this version's snapshots.
FORMAT = b"anomalyd-state-2\n"
#: The header of version 1's pickles: never unpickled (see the module's docstring).
PICKLE_FORMAT = b"anomalyd-state-1\n"
#: No stream's state comes near this (a HalfSpaceTrees model, the largest, is ~200 KB).
MAX_BYTES = 1 << 20
_MODES: tuple[str, ...] = get_args(Mode)


@dataclass(slots=True)
class Restored:
    state: StreamState
    #: Firing alerts of rules and models whose memory was not restored: to resolve.
    orphans: list[Alert]


def encode(state: StreamState, model: ModelSection) -> bytes:
    """The state as a snapshot; its models have the shape of `model`."""
    data = {
        "mode": state.mode,
        "threshold": state.threshold,
        "last_seen": number(state.last_seen),
        "events": state.events,
        "labels": dict(state.labels),
        "rules": [_rule_series_state(series) for series in state.rules],
        "absences": [_absence_state(absence) for absence in state.absences],
        "model": shape_digest(model),
        "models": {
            name: {"model": series.model.state(), "tracked": _tracked_state(series.tracked)}
            for name, series in state.models.items()
        },
        "feedback": None if state.feedback is None else state.feedback.state(),
    }
    return FORMAT + orjson.dumps(data)


def decode(
    blob: bytes,
    rules: Sequence[Rule],
    model: ModelSection,
    new_series: Callable[[ValueRule], RuleSeries],
    new_model: Callable[[str], ModelSeries],
) -> Restored:
    """Read a snapshot back under the current config: `rules` (those matching the stream),
    `model`, and the factories of fresh rule and model series to load state into.
    Raises StateError, saying why, for anything but a well-formed snapshot of this
    version; runs nothing that the snapshot names."""
    if blob.startswith(PICKLE_FORMAT):
        raise StateError("version 1 (a pickle, never read): the stream starts afresh")
    if not blob.startswith(FORMAT):
        raise StateError("not an anomalyd state snapshot")
    if len(blob) > MAX_BYTES:
        raise StateError(f"{len(blob)} bytes, more than {MAX_BYTES}")
    try:
        data = orjson.loads(blob[len(FORMAT) :])
    except orjson.JSONDecodeError as error:
        raise StateError(f"not JSON: {error}") from None
    return _stream(read_object(data, "state"), rules, model, new_series, new_model)


def rule_digest(rule: Rule) -> str:
    """A digest of a rule's definition: equal rules, equal digests."""
    return _digest(rule.model_dump_json().encode())


def shape_digest(model: ModelSection) -> str:
    """A digest of the settings a model is built with (`reconcile.model_shape`)."""
    shape = [v.model_dump() if isinstance(v, BaseModel) else v for v in model_shape(model)]
    return _digest(orjson.dumps(shape))


def _digest(text: bytes) -> str:
    return hashlib.blake2b(text, digest_size=16).hexdigest()


# -- writing -------------------------------------------------------------------------------


def _rule_series_state(series: RuleSeries) -> dict[str, Plain]:
    return {
        "rule": series.rule.name,
        "config": rule_digest(series.rule),
        "check": series.check.state(),
        "tracked": _tracked_state(series.tracked),
    }


def _absence_state(absence: Absence) -> dict[str, Plain]:
    return {
        "rule": absence.rule.name,
        "config": rule_digest(absence.rule),
        "alert": _alert_state(absence.alert),
    }


def _tracked_state(tracked: Tracked) -> dict[str, Plain]:
    state = tracked.state
    return {
        "phase": state.phase.value,
        "since": number(state.since),
        "clear_since": None if state.clear_since is None else number(state.clear_since),
        "alert": _alert_state(tracked.alert),
    }


def _alert_state(alert: Alert | None) -> dict[str, Plain] | None:
    if alert is None:
        return None
    return {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "status": alert.status.value,
        "starts_at": number(alert.starts_at),
        "ends_at": None if alert.ends_at is None else number(alert.ends_at),
        "fingerprint": alert.fingerprint,
        "generator_url": alert.generator_url,
    }


# -- reading -------------------------------------------------------------------------------


def _stream(
    data: Mapping[str, Plain],
    rules: Sequence[Rule],
    model: ModelSection,
    new_series: Callable[[ValueRule], RuleSeries],
    new_model: Callable[[str], ModelSeries],
) -> Restored:
    orphans: list[Alert] = []
    by_name = {rule.name: rule for rule in rules}
    mode = read_str(required(data, "mode", "state"), "state.mode")
    if mode not in _MODES:
        raise StateError(f"state.mode: one of {', '.join(_MODES)}")
    series = read_list(required(data, "rules", "state"), "state.rules")
    absences = read_list(required(data, "absences", "state"), "state.absences")
    feedback = required(data, "feedback", "state")
    state = StreamState(
        mode=mode,  # type: ignore[arg-type]  # checked against Mode just above
        threshold=read_finite(required(data, "threshold", "state"), "state.threshold"),
        rules=[
            s
            for i, item in enumerate(series)
            if (s := _rule_series(item, f"state.rules[{i}]", by_name, new_series, orphans))
        ],
        absences=[
            a
            for i, item in enumerate(absences)
            if (a := _absence(item, f"state.absences[{i}]", by_name, orphans))
        ],
        last_seen=read_finite(required(data, "last_seen", "state"), "state.last_seen"),
        labels=read_labels(required(data, "labels", "state"), "state.labels"),
        models=_models(data, model, new_model, orphans),
        events=read_int(required(data, "events", "state"), "state.events"),
        feedback=None
        if feedback is None
        else StreamFeedback.from_state(feedback, "state.feedback"),
    )
    return Restored(state, orphans)


def _bound_rule(data: Mapping[str, Plain], where: str, rules: Mapping[str, Rule]) -> Rule | None:
    """The current config's rule this state was written for: same name, same definition."""
    name = read_str(required(data, "rule", where), f"{where}.rule")
    digest = read_str(required(data, "config", where), f"{where}.config")
    rule = rules.get(name)
    return rule if rule is not None and rule_digest(rule) == digest else None


def _rule_series(
    item: Plain,
    where: str,
    rules: Mapping[str, Rule],
    new_series: Callable[[ValueRule], RuleSeries],
    orphans: list[Alert],
) -> RuleSeries | None:
    data = read_object(item, where)
    rule = _bound_rule(data, where, rules)
    tracked = read_object(required(data, "tracked", where), f"{where}.tracked")
    if rule is None or isinstance(rule, AbsenceRule):  # changed or gone: memory lost
        _orphan(required(tracked, "alert", f"{where}.tracked"), f"{where}.tracked.alert", orphans)
        return None
    series = new_series(rule)
    series.check.load_state(required(data, "check", where), f"{where}.check")
    _load_tracked(series.tracked, tracked, f"{where}.tracked")
    return series


def _absence(
    item: Plain, where: str, rules: Mapping[str, Rule], orphans: list[Alert]
) -> Absence | None:
    data = read_object(item, where)
    rule = _bound_rule(data, where, rules)
    alert = _alert(required(data, "alert", where), f"{where}.alert")
    if not isinstance(rule, AbsenceRule):  # changed or gone
        orphans.extend([alert] if alert is not None else [])
        return None
    return Absence(rule, alert)


def _models(
    data: Mapping[str, Plain],
    model: ModelSection,
    new_model: Callable[[str], ModelSeries],
    orphans: list[Alert],
) -> dict[str, ModelSeries]:
    models = read_object(required(data, "models", "state"), "state.models")
    same_shape = read_str(required(data, "model", "state"), "state.model") == shape_digest(model)
    restored = {}
    for name, item in models.items():
        where = f"state.models.{name}"
        entry = read_object(item, where)
        tracked = read_object(required(entry, "tracked", where), f"{where}.tracked")
        if not same_shape:  # built otherwise: learns again, as after a reload (reconcile)
            _orphan(
                required(tracked, "alert", f"{where}.tracked"), f"{where}.tracked.alert", orphans
            )
            continue
        series = restored[read_str(name, where)] = new_model(name)
        series.model.load_state(required(entry, "model", where), f"{where}.model")
        _load_tracked(series.tracked, tracked, f"{where}.tracked")
    return restored


def _orphan(item: Plain, where: str, orphans: list[Alert]) -> None:
    alert = _alert(item, where)
    if alert is not None:
        orphans.append(alert)


def _load_tracked(tracked: Tracked, data: Mapping[str, Plain], where: str) -> None:
    phase = read_str(required(data, "phase", where), f"{where}.phase")
    if phase not in {p.value for p in Phase}:
        raise StateError(f"{where}.phase: one of {', '.join(p.value for p in Phase)}")
    state = AlertState(
        Phase(phase),
        since=read_finite(required(data, "since", where), f"{where}.since"),
        clear_since=read_optional_finite(
            required(data, "clear_since", where), f"{where}.clear_since"
        ),
    )
    tracked.state = INACTIVE if state == INACTIVE else state
    tracked.alert = _alert(required(data, "alert", where), f"{where}.alert")


def _alert(item: Plain, where: str) -> Alert | None:
    if item is None:
        return None
    data = read_object(item, where)
    status = read_str(required(data, "status", where), f"{where}.status")
    if status not in {s.value for s in AlertStatus}:
        raise StateError(f"{where}.status: firing or resolved")
    return Alert(
        labels=read_labels(required(data, "labels", where), f"{where}.labels"),
        annotations=read_labels(required(data, "annotations", where), f"{where}.annotations"),
        status=AlertStatus(status),
        starts_at=read_finite(required(data, "starts_at", where), f"{where}.starts_at"),
        fingerprint=read_str(required(data, "fingerprint", where), f"{where}.fingerprint"),
        generator_url=read_str(required(data, "generator_url", where), f"{where}.generator_url"),
        ends_at=read_optional_finite(required(data, "ends_at", where), f"{where}.ends_at"),
    )
