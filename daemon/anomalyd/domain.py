"""Domain values shared by every layer: events in, alerts out.

Plain frozen dataclasses: nothing here knows Kafka, HTTP or the config format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

#: The series name used for single-value events (`{"value": ...}`).
VALUE_FIELD = "value"


# Not frozen: a frozen dataclass costs five times as much to build, and one is built
# per event on the hot path. Treat it as immutable all the same.
@dataclass(slots=True)
class Event:
    """One validated observation of a stream.

    `values` maps field name to a finite float; a single-value event has the
    one field `value`. `ts` is event time in epoch seconds.
    """

    stream: str
    ts: float
    values: Mapping[str, float]
    labels: Mapping[str, str] = field(default_factory=dict)


# Not frozen: a frozen dataclass costs five times as much to build, and one is built
# per event on the hot path. Treat it as immutable all the same.
@dataclass(slots=True)
class Verdict:
    """What detection concluded about one field of one event.

    `score` in [0, 1] from whoever may page in the stream's mode: 1 for a rule hit
    (modes rules, shadow, hybrid), the model's calibrated score (modes hybrid, model;
    0 while it warms up); `model_score` is the model's score in every mode but rules.
    """

    stream: str
    field: str
    ts: float
    value: float
    score: float
    model_score: float | None
    rule_hits: tuple[str, ...]
    warm: bool


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class FeedbackLabel(StrEnum):
    """What a person says of an alert: it was worth it, or it was noise."""

    TRUE_POSITIVE = "true_positive"
    FALSE_POSITIVE = "false_positive"


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert in Alertmanager's data model.

    `labels` are the identity (their fingerprint is the alert's id);
    `annotations` explain it. Times are epoch seconds; `ends_at` is set on
    resolution.
    """

    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    status: AlertStatus
    starts_at: float
    fingerprint: str
    generator_url: str = ""
    ends_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Alertmanager's JSON shape (as in its webhook payload)."""
        return {
            "status": self.status.value,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": format_time(self.starts_at),
            "endsAt": format_time(self.ends_at) if self.ends_at is not None else ZERO_TIME,
            "generatorURL": self.generator_url,
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Alert:
        ends = data.get("endsAt")
        return cls(
            labels=dict(data["labels"]),
            annotations=dict(data.get("annotations", {})),
            status=AlertStatus(data["status"]),
            starts_at=parse_time(data["startsAt"]),
            fingerprint=str(data["fingerprint"]),
            generator_url=str(data.get("generatorURL", "")),
            ends_at=None if ends in (None, ZERO_TIME) else parse_time(str(ends)),
        )


#: Alertmanager's "no end time" value in its webhook payloads.
ZERO_TIME = "0001-01-01T00:00:00Z"


def format_time(epoch_seconds: float) -> str:
    """RFC 3339 in UTC with millisecond precision, as Alertmanager prints it."""
    stamp = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
