"""Feedback on alerts, and what it does to each stream's model threshold.

People label alerts `true_positive` or `false_positive` (through the API, or the signed
links in notifications). Pure: no I/O, no clock. The state lives in the stream's state
(`StreamState.feedback`), so it is snapshotted and moves with the stream.

Per stream and detector, the last `window` labels give a precision estimate with a
Beta(1, 1) prior: (true positives + 1) / (labels + 2), 0.5 with no labels. For the model
(`detector: model`), each new label may move the stream's threshold by one `step`:

| the new label     | when                                                   | the threshold  |
|-------------------|--------------------------------------------------------|----------------|
| false positive    | >= `min_labels` labels and precision < `target_precision` | up one step    |
| true positive     | the `lower_after`-th in a row and precision >= target  | down one step  |
| anything else     |                                                        | holds          |

Raising answers noise. Lowering probes for anomalies just under the threshold (recall,
which labels on alerts cannot show); the false positives it finds raise it again. Only a
false positive raises and only a true positive lowers, so a move always goes the way the
new label argues. A move never leaves [`min_threshold`, `max_threshold`], nor goes further
out when the configured threshold lies outside.

The adaptation is an offset from the configured threshold (`threshold_offset`): a reload
that changes the configured threshold keeps it on top (the sum stays within the bounds);
`enabled: false` sets it aside, so the configured thresholds apply, without forgetting it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from anomalyd.config import FeedbackSection
from anomalyd.decide.annotate import MODEL
from anomalyd.domain import FeedbackLabel as Label
from anomalyd.domain import format_time, parse_time
from anomalyd.plain import (
    Plain,
    StateError,
    read_bool,
    read_finite,
    read_int,
    read_list,
    read_object,
    read_str,
    required,
)

#: Ids of the records applied, kept per stream: each is applied once, though Kafka may
#: deliver it twice and a person may click a link twice.
SEEN_IDS = 256
#: The most labels a tally remembers (the bound of `FeedbackSection.window`).
MAX_WINDOW = 10_000


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    """One label on one alert: a record of the feedback topic (JSON, keyed by stream).

    `id` makes applying it idempotent; `source` is `api` (POST) or `link` (a signed link,
    whose id is the same on every click)."""

    id: str
    fingerprint: str
    stream: str
    alertname: str
    detector: str
    label: Label
    at: float
    by: str | None = None
    comment: str | None = None
    source: str = "api"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "fingerprint": self.fingerprint,
            "stream": self.stream,
            "alertname": self.alertname,
            "detector": self.detector,
            "label": self.label.value,
            "at": format_time(self.at),
            "by": self.by,
            "comment": self.comment,
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: Any) -> FeedbackRecord:
        """Raises ValueError saying what is wrong with a record this version cannot read."""
        if not isinstance(data, Mapping):
            raise ValueError("a feedback record is a JSON object")
        try:
            text = {
                key: _text(data, key)
                for key in ("id", "fingerprint", "stream", "alertname", "detector")
            }
            return cls(
                **text,
                label=Label(data["label"]),
                at=parse_time(_text(data, "at")),
                by=_optional_text(data, "by"),
                comment=_optional_text(data, "comment"),
                source=_optional_text(data, "source") or "api",
            )
        except KeyError as missing:
            raise ValueError(f"missing {missing}") from None


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key}: a non-empty string")
    return value


def _optional_text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key}: a string or null")
    return value


@dataclass(slots=True)
class Tally:
    """The last labels of one detector on one stream, newest last (True: a true positive)."""

    recent: list[bool] = field(default_factory=list)
    #: True positives in a row, since the last false positive or the last lowering.
    streak: int = 0

    @property
    def labels(self) -> int:
        return len(self.recent)

    @property
    def true_positives(self) -> int:
        return sum(self.recent)

    @property
    def precision(self) -> float:
        return precision(self.true_positives, self.labels)

    def add(self, true_positive: bool, window: int) -> None:
        self.recent.append(true_positive)
        del self.recent[:-window]
        self.streak = self.streak + 1 if true_positive else 0

    def state(self) -> dict[str, Plain]:
        return {"recent": list(self.recent), "streak": self.streak}

    @classmethod
    def from_state(cls, state: Plain, where: str) -> Tally:
        data = read_object(state, where)
        recent = read_list(required(data, "recent", where), f"{where}.recent")
        if len(recent) > MAX_WINDOW:
            raise StateError(f"{where}.recent: at most {MAX_WINDOW} labels")
        return cls(
            [read_bool(x, f"{where}.recent[{i}]") for i, x in enumerate(recent)],
            read_int(required(data, "streak", where), f"{where}.streak"),
        )


@dataclass(slots=True)
class StreamFeedback:
    """A stream's labels per detector, and how far they moved its model threshold."""

    tallies: dict[str, Tally] = field(default_factory=dict)
    threshold_offset: float = 0.0
    seen: list[str] = field(default_factory=list)  # ids applied, newest last

    def state(self) -> dict[str, Plain]:
        """As plain values (`anomalyd.plain`), for the stream's snapshot."""
        return {
            "tallies": {detector: tally.state() for detector, tally in self.tallies.items()},
            "threshold_offset": self.threshold_offset,
            "seen": list(self.seen),
        }

    @classmethod
    def from_state(cls, state: Plain, where: str) -> StreamFeedback:
        data = read_object(state, where)
        tallies = read_object(required(data, "tallies", where), f"{where}.tallies")
        seen = read_list(required(data, "seen", where), f"{where}.seen")
        if len(seen) > SEEN_IDS:
            raise StateError(f"{where}.seen: at most {SEEN_IDS} ids")
        offset = read_finite(required(data, "threshold_offset", where), f"{where}.threshold_offset")
        return cls(
            {name: Tally.from_state(t, f"{where}.tallies.{name}") for name, t in tallies.items()},
            offset,
            [read_str(x, f"{where}.seen[{i}]") for i, x in enumerate(seen)],
        )


@dataclass(frozen=True, slots=True)
class Recorded:
    """What one record did: the detector's precision and labels after it, and, when it
    moved the model threshold, from where to where."""

    detector: str
    label: Label
    precision: float
    labels: int
    duplicate: bool = False
    old_threshold: float | None = None
    new_threshold: float | None = None

    @property
    def direction(self) -> str | None:
        """`up` or `down` when the threshold moved."""
        if self.new_threshold is None or self.old_threshold is None:
            return None
        return "up" if self.new_threshold > self.old_threshold else "down"


def precision(true_positives: int, labels: int) -> float:
    """The posterior mean of the precision under a Beta(1, 1) prior."""
    return (true_positives + 1) / (labels + 2)


def record(
    state: StreamFeedback, entry: FeedbackRecord, section: FeedbackSection, threshold: float | None
) -> Recorded:
    """Count one label (once per id). `threshold` is the stream's model threshold now, or
    None when the model does not page there. The caller applies `new_threshold`."""
    if entry.id in state.seen:
        tally = state.tallies.get(entry.detector, Tally())
        return Recorded(entry.detector, entry.label, tally.precision, tally.labels, True)
    state.seen.append(entry.id)
    del state.seen[:-SEEN_IDS]
    tally = state.tallies.setdefault(entry.detector, Tally())
    tally.add(entry.label is Label.TRUE_POSITIVE, section.window)
    moved = None
    if section.enabled and threshold is not None and entry.detector == MODEL:
        moved = next_threshold(tally, entry.label, threshold, section)
        if moved is not None and moved < threshold:
            tally.streak = 0  # lower slowly: a new run of true positives before the next
    return Recorded(
        entry.detector,
        entry.label,
        tally.precision,
        tally.labels,
        old_threshold=threshold,
        new_threshold=moved,
    )


def next_threshold(
    tally: Tally, label: Label, current: float, section: FeedbackSection
) -> float | None:
    """The rule of the module's table, once `label` is counted in `tally`: the new
    threshold, or None to hold."""
    if label is Label.FALSE_POSITIVE:
        if tally.labels < section.min_labels or tally.precision >= section.target_precision:
            return None
        raised = round(min(current + section.step, section.max_threshold), 9)
        return raised if raised > current else None
    if tally.streak < section.lower_after or tally.precision < section.target_precision:
        return None
    lowered = round(max(current - section.step, section.min_threshold), 9)
    return lowered if lowered < current else None


def effective_threshold(configured: float, offset: float, section: FeedbackSection) -> float:
    """The threshold the model pages at: the configured one moved by the adaptation, kept
    within the bounds (or no further out than the configured threshold itself)."""
    if not section.enabled or offset == 0.0:
        return configured
    low = min(configured, section.min_threshold)
    high = max(configured, section.max_threshold)
    return min(max(configured + offset, low), high)


def pooled_precision(states: Iterable[StreamFeedback]) -> dict[str, float]:
    """Precision per detector over the remembered labels of all these streams."""
    true_positives: Counter[str] = Counter()
    labels: Counter[str] = Counter()
    for state in states:
        for detector, tally in state.tallies.items():
            true_positives[detector] += tally.true_positives
            labels[detector] += tally.labels
    return {detector: precision(true_positives[detector], n) for detector, n in labels.items()}


def summary(state: StreamFeedback | None) -> dict[str, dict[str, Any]]:
    """Per detector: labels remembered, true and false positives, precision."""
    if state is None:
        return {}
    return {
        detector: {
            "labels": tally.labels,
            "true_positives": tally.true_positives,
            "false_positives": tally.labels - tally.true_positives,
            "precision": round(tally.precision, 4),
        }
        for detector, tally in state.tallies.items()
    }
