"""The detection engine: the rules and the online model judge every point of the
streams this worker owns, and each judgement moves that alert's life cycle.

Plain Python with no I/O: the worker feeds it events from Kafka, `backtest`
feeds it events from a file, and both get the same verdicts and alerts.

Per stream, the mode decides who may page (see `config.detection.Mode`); in
every mode but `rules` the model learns, seeded from the rules: it learns only
the points no threshold rule calls anomalous, and it may page once it has learned
`model.warmup` of them.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from anomalyd import alert as alerts
from anomalyd.config import AbsenceRule, Mode, ModelSection, Rule, ValueRule
from anomalyd.decide import annotate, feedback, state_codec
from anomalyd.decide.lifecycle import Timing, Transition
from anomalyd.decide.reconcile import Target, model_shape, reconcile
from anomalyd.decide.streams import Absence, ModelSeries, RuleSeries, StreamState, Tracked
from anomalyd.detect import ModelScore, SeriesModel, value_check
from anomalyd.domain import VALUE_FIELD, Alert, Event, Verdict


# Not frozen: a frozen dataclass costs five times as much to build, and one is built
# per event on the hot path. Treat it as immutable all the same.
@dataclass(slots=True)
class Judgement:
    """The outcome of one event: a verdict per field, and the alerts that changed."""

    verdicts: list[Verdict]
    alerts: list[Alert]


class Engine:
    def __init__(
        self,
        rules: Sequence[Rule],
        model: ModelSection,
        external_url: str,
        *,
        drift_status: Callable[[str], str | None] = lambda stream: None,
        untrusted: Callable[[str], bool] = lambda stream: False,
        config_version: str | None = None,
    ) -> None:
        """`drift_status(stream)` is shown on alerts; while `untrusted(stream)` (its data
        drifts), the stream's model does not page and learns every point, to re-baseline.
        `config_version`, if given, is the `config_version` annotation of every alert."""
        self._rules = list(rules)
        self._model = model
        self._external_url = external_url
        self._drift_status = drift_status
        self._untrusted = untrusted
        self._version = config_version
        self._streams: dict[str, StreamState] = {}
        #: Alerts of restored streams that the current config no longer owns: to resolve.
        self._orphans: list[Alert] = []

    @property
    def stream_count(self) -> int:
        return len(self._streams)

    def streams(self) -> list[str]:
        return list(self._streams)

    def stream(self, name: str) -> StreamState | None:
        return self._streams.get(name)

    def process(self, event: Event, now: float) -> Judgement:
        """Judge one event. `now` is when it arrived (for absence); decisions use event time."""
        stream = self._streams.get(event.stream)
        if stream is None:
            stream = self._streams[event.stream] = self._new_stream(event.stream, now)
        stream.last_seen = now
        if stream.labels != event.labels:  # nearly always equal: copy only on change
            stream.labels = dict(event.labels)
        stream.events += 1
        changed = (
            [self._resolved(a, now) for a in map(_end_absence, stream.absences) if a]
            if stream.absences
            else []
        )
        verdicts = [
            self._judge_field(event, stream, field, value, changed)
            for field, value in event.values.items()
        ]
        return Judgement(verdicts, changed)

    def reconfigure(
        self,
        rules: Sequence[Rule],
        model: ModelSection,
        *,
        now: float,
        config_version: str | None = None,
    ) -> list[Alert]:
        """Adopt a new config without losing what the streams learned (`decide.reconcile`:
        unchanged rules and models keep their state). Returns the resolved alerts of what
        the new config no longer owns, ended at `now`."""
        rebuild = model_shape(model) != model_shape(self._model)
        self._rules, self._model, self._version = list(rules), model, config_version
        ended = [
            alert
            for name, stream in self._streams.items()
            for alert in self._reconcile(name, stream, rebuild)
        ]
        return [self._resolved(alert, now) for alert in ended]

    def take_orphans(self, now: float) -> list[Alert]:
        """Resolve the alerts of restored streams that the current config no longer owns."""
        orphans, self._orphans = self._orphans, []
        return [self._resolved(alert, now) for alert in orphans]

    def check_absence(self, now: float) -> list[Alert]:
        """Fire an absence alert for every stream silent for longer than its rule allows."""
        fired = []
        for name, stream in self._streams.items():
            for absence in stream.absences:
                if absence.alert is None and now - stream.last_seen > absence.rule.for_:
                    absence.alert = self._absence_alert(name, stream, absence.rule)
                    fired.append(absence.alert)
        return fired

    def snapshot(self, stream: str) -> bytes | None:
        """The stream's whole state (rule memory, model, alert life cycles) as bytes:
        versioned JSON of plain fields (`decide.state_codec`)."""
        state = self._streams.get(stream)
        if state is None:
            return None
        return state_codec.encode(state, self._model)

    def restore(self, stream: str, blob: bytes) -> bool:
        """Resume a stream from `snapshot`; False (and nothing changes) if the blob is not
        a snapshot this version reads (`refusal` says why)."""
        return self.refusal(stream, blob) is None

    def refusal(self, stream: str, blob: bytes) -> str | None:
        """Resume a stream from `snapshot`; None once done, else why it was refused (and
        nothing changes). Reading a snapshot never runs anything it holds: it is data
        read back into objects built from the current config (`decide.state_codec`)."""
        try:
            restored = state_codec.decode(
                blob,
                self._matching(stream),
                self._model,
                _rule_series,
                lambda field: self._new_model(stream, field),
            )
        except (ValueError, TypeError, LookupError) as error:  # StateError is a ValueError
            # TypeError and LookupError too: whatever is in the blob, the worker goes on.
            return str(error) or type(error).__name__
        # It may have been written under another config: brought in line with this one.
        self._orphans.extend(restored.orphans)
        self._orphans.extend(self._reconcile(stream, restored.state, rebuild=False))
        self._streams[stream] = restored.state
        return None

    def forget(self, streams: Iterable[str]) -> None:
        """Drop streams this worker no longer owns (after a rebalance)."""
        for name in streams:
            self._streams.pop(name, None)

    # -- feedback -------------------------------------------------------------------------

    def model_threshold(self, stream: str) -> float | None:
        """The threshold the stream's model pages at: the configured one, moved by feedback."""
        state = self._streams.get(stream)
        return None if state is None else _model_threshold(state, self._model)

    def set_threshold(self, stream: str, threshold: float) -> bool:
        """Set a stream's model threshold from now on; False if the stream is unknown. Kept
        as an offset from the configured threshold, which a reload may change: the
        adaptation then stays on top of the new one (`decide.feedback`)."""
        state = self._streams.get(stream)
        if state is None:
            return False
        state.feedback = state.feedback or feedback.StreamFeedback()
        state.feedback.threshold_offset = threshold - state.threshold
        return True

    def record_feedback(self, entry: feedback.FeedbackRecord) -> feedback.Recorded | None:
        """Count a person's label on one of the stream's alerts; a model label may move the
        stream's threshold (`decide.feedback`). None if the stream has no state here."""
        state = self._streams.get(entry.stream)
        if state is None:
            return None
        state.feedback = state.feedback or feedback.StreamFeedback()
        current = _model_threshold(state, self._model) if state.model_pages else None
        recorded = feedback.record(state.feedback, entry, self._model.feedback, current)
        if recorded.new_threshold is not None:
            self.set_threshold(entry.stream, recorded.new_threshold)
        return recorded

    # -- one field of one event ---------------------------------------------------------

    def _judge_field(
        self, event: Event, stream: StreamState, field: str, value: float, changed: list[Alert]
    ) -> Verdict:
        # One page per incident: once the field's model may page, it speaks for the
        # statistical rules (their judgement is what it does better), and it keeps quiet
        # while a rule that people wrote as a threshold already pages for the field.
        # Until then (its warm-up points, and a day of a seasonal stream) the rules
        # baseline pages: day one works. (Handing over at the warm-up points alone paged
        # Student-t(3) noise less, 2.3 against 3.6 a week, but left a seasonal stream
        # unwatched by anything statistical for its first day, the demo's streams too.)
        series = stream.models.get(field)
        handover = stream.model_pages and series is not None and series.model.warm_at(event.ts)
        hits = self._apply_rules(event, stream, field, value, changed, handover)
        scored = None
        if stream.mode != "rules":
            # Seeded from the threshold rules: it learns no point people called anomalous.
            # A statistical rule's hit is only an opinion about what is usual, which the
            # model judges better itself (measured: seeding from the catch-all zscore rule
            # cost 6 points of NAB's standard score).
            normal = not hits or not any(hit in stream.thresholds for hit in hits)
            scored = self._apply_model(event, stream, field, value, normal, changed)
        model_score = None if scored is None else scored.score
        score = _verdict_score(stream.mode, bool(hits), model_score)
        warm = scored is not None and scored.warm
        return Verdict(event.stream, field, event.ts, value, score, model_score, hits, warm)

    def _apply_rules(
        self,
        event: Event,
        stream: StreamState,
        field: str,
        value: float,
        changed: list[Alert],
        handover: bool,
    ) -> tuple[str, ...]:
        hits = []
        for series in stream.rules:
            if series.field != field:
                continue
            check = series.judge(value, event.ts)  # judged all the same: it keeps learning
            if check is None:
                continue
            violated = check.violated and not (handover and series.statistical)
            if violated:
                hits.append(series.rule.name)
            if stream.rules_page and self._step(series.tracked, violated, event.ts, changed):
                rule = series.rule
                labels = annotate.identity(
                    rule.name,
                    event.stream,
                    rule.severity.value,
                    annotate.RULES,
                    field,
                    stream.labels,
                )
                annotations = annotate.rule_annotations(rule, event.stream, field, check)
                self._fire(series.tracked, labels, annotations, changed)
        return tuple(hits)

    def _apply_model(
        self,
        event: Event,
        stream: StreamState,
        field: str,
        value: float,
        normal: bool,
        changed: list[Alert],
    ) -> ModelScore:
        series = stream.models.get(field)
        if series is None:
            series = stream.models[field] = self._new_model(event.stream, field)
        scored = series.model.score(value, event.ts)
        trusted = not self._untrusted(event.stream)
        if normal or not trusted:  # seeded from the rules; re-baselined while drifting
            series.model.learn(scored)
        series.model.remember(value)
        # An untrusted (drifting) model does not page, and what it paged ends: it resolves.
        if stream.model_pages and scored.warm:
            threshold = _model_threshold(stream, self._model)
            violated = trusted and scored.score >= threshold
            fired = self._step(series.tracked, violated, event.ts, changed)
            if fired and _rule_pages(stream, field):
                # One page per incident: a threshold rule people wrote already pages for
                # this field. The model's episode runs silently (no alert, so nothing to
                # resolve) and cannot page again until it has ended.
                series.tracked.alert = None
            elif fired:
                section = self._model
                labels = annotate.identity(
                    section.alertname,
                    event.stream,
                    section.severity.value,
                    annotate.MODEL,
                    field,
                    stream.labels,
                )
                annotations = annotate.model_annotations(
                    section, event.stream, field, scored, threshold
                )
                self._fire(series.tracked, labels, annotations, changed)
        return scored

    def _step(self, tracked: Tracked, violated: bool, ts: float, changed: list[Alert]) -> bool:
        """Advance one alert's life cycle; True when it fires (the caller then describes
        it: words are built for the few points that fire, not for every point)."""
        transition = tracked.step(violated, ts)
        if transition is Transition.RESOLVED and tracked.alert is not None:
            changed.append(self._resolved(tracked.alert, ts))
            tracked.alert = None
        return transition is Transition.FIRED

    def _fire(
        self,
        tracked: Tracked,
        labels: dict[str, str],
        annotations: dict[str, str],
        changed: list[Alert],
    ) -> None:
        drift = self._drift_status(labels["stream"])
        if drift is not None:
            annotations["drift"] = drift
        fired = alerts.firing(labels, annotations, tracked.state.since, self._external_url)
        tracked.alert = alerts.with_version(fired, self._version)
        changed.append(tracked.alert)

    def _resolved(self, alert: Alert, ends_at: float) -> Alert:
        """The alert resolved, annotated with the config version that resolved it."""
        ended = alerts.resolved(alert, ends_at=max(ends_at, alert.starts_at))
        return alerts.with_version(ended, self._version)

    # -- streams ---------------------------------------------------------------------------

    def _new_stream(self, name: str, now: float) -> StreamState:
        matching = self._matching(name)
        mode, threshold = self._mode_for(name)
        return StreamState(
            mode=mode,
            threshold=threshold,
            rules=[_rule_series(r) for r in matching if not isinstance(r, AbsenceRule)],
            absences=[Absence(r) for r in matching if isinstance(r, AbsenceRule)],
            last_seen=now,
        )

    def _matching(self, stream: str) -> list[Rule]:
        return [r for r in self._rules if any(fnmatchcase(stream, g) for g in r.streams)]

    def _reconcile(self, name: str, stream: StreamState, rebuild: bool) -> list[Alert]:
        """Bring a stream in line with the current config; the alerts it no longer owns."""
        mode, threshold = self._mode_for(name)
        target = Target(self._matching(name), mode, threshold, self._model, rebuild)
        return reconcile(stream, target, _rule_series)

    def _mode_for(self, stream: str) -> tuple[Mode, float]:
        mode, threshold = self._model.mode, self._model.threshold
        for override in self._model.overrides:
            if any(fnmatchcase(stream, g) for g in override.streams):
                mode = override.mode or mode
                threshold = override.threshold if override.threshold is not None else threshold
                break
        return mode, threshold

    def _new_model(self, stream: str, field: str) -> ModelSeries:
        # A seed per series: reproducible, yet series do not share random draws.
        seed = self._model.seed ^ zlib.crc32(f"{stream}\x00{field}".encode())
        timing = Timing(self._model.for_, self._model.keep_firing_for)
        return ModelSeries(SeriesModel(self._model, seed), Tracked(timing))

    def _absence_alert(self, name: str, stream: StreamState, rule: AbsenceRule) -> Alert:
        labels = annotate.identity(
            rule.name, name, rule.severity.value, annotate.RULES, VALUE_FIELD, stream.labels
        )
        annotations = annotate.absence_annotations(rule, name)
        fired = alerts.firing(labels, annotations, stream.last_seen + rule.for_, self._external_url)
        return alerts.with_version(fired, self._version)


def _verdict_score(mode: Mode, rule_hit: bool, model_score: float | None) -> float:
    """One score in [0, 1] for the point, from whoever may page in this mode: a rule hit
    counts 1; the model's calibrated score counts only where the model pages."""
    rules = 1.0 if rule_hit and mode != "model" else 0.0
    model = (model_score or 0.0) if mode in ("hybrid", "model") else 0.0
    return max(rules, model)


def _model_threshold(stream: StreamState, model: ModelSection) -> float:
    if stream.feedback is None:
        return stream.threshold
    offset = stream.feedback.threshold_offset
    return feedback.effective_threshold(stream.threshold, offset, model.feedback)


def _rule_series(rule: ValueRule) -> RuleSeries:
    timing = Timing(rule.for_, rule.keep_firing_for)
    return RuleSeries(rule, rule.field, value_check(rule), Tracked(timing))


def _rule_pages(stream: StreamState, field: str) -> bool:
    """Whether a threshold rule people wrote fires on this field of the stream now."""
    return any(s.tracked.firing for s in stream.rules if s.field == field and not s.statistical)


def _end_absence(absence: Absence) -> Alert | None:
    """The stream is back: the absence alert that fired, if any, is to be resolved."""
    fired, absence.alert = absence.alert, None
    return fired
