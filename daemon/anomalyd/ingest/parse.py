"""Decode and validate one event message. Pure: bytes in, Event or InvalidEvent out.

Every rejection carries a short `code` (a bounded set, used as a metric label)
and a `detail` for humans; both go with the original bytes to the dead-letter topic.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from anomalyd.domain import VALUE_FIELD, Event

STREAM_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/\-]{0,199}")
LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,99}")
#: Labels the daemon sets on alerts itself; an event may not forge them.
RESERVED_LABELS = frozenset({"alertname", "stream", "severity", "detector", "field"})
MAX_LABEL_VALUE = 1024
_KNOWN_KEYS = frozenset({"stream", "ts", "value", "fields", "labels"})
#: Unicode categories a label value may not hold: control characters (C0, DEL, C1 with
#: U+0085 NEXT LINE), format characters (zero-width, bidi overrides) and the line and
#: paragraph separators. Each can split or disguise a line in a log, a mail header or a page.
_REJECTED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
_NUMBER = (int, float)  # a tuple: `int | float` would build a union object per call
# Epoch numbers above this are milliseconds: 1e11 seconds is the year 5138.
_MS_CUTOFF = 1e11
# Accept event times from 1970 to 2200; anything else is a unit mistake.
_MIN_TS, _MAX_TS = 0.0, 7_258_118_400.0


#: Every `InvalidEvent.code` the parser gives (a metric label: a bounded set).
INVALID_EVENT_CODES = (
    "oversized",
    "invalid_json",
    "not_an_object",
    "unknown_field",
    "missing_stream",
    "bad_stream",
    "missing_ts",
    "bad_ts",
    "future_ts",
    "bad_value",
    "bad_fields",
    "bad_labels",
)


class InvalidEvent(Exception):
    """Why a message is not a usable event."""

    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"{code}: {detail}")


@dataclass(frozen=True, slots=True)
class Limits:
    max_event_bytes: int = 65536
    max_labels: int = 32
    max_fields: int = 64
    #: Seconds an event may lie ahead of the worker's clock; None: no limit.
    max_future_skew: float | None = None


def parse_event(
    raw: bytes, limits: Limits, default_ts: float | None = None, now: float | None = None
) -> Event:
    """The event in `raw`, or InvalidEvent.

    `default_ts` (the message's broker timestamp) is used when the event has no `ts`;
    it is checked like one. With `now`, an event later than `now` plus
    `limits.max_future_skew` is rejected (`future_ts`).
    """
    if len(raw) > limits.max_event_bytes:
        raise InvalidEvent(
            "oversized", f"{len(raw)} bytes > max_event_bytes {limits.max_event_bytes}"
        )
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidEvent("invalid_json", str(error)) from error
    if not isinstance(doc, dict):
        raise InvalidEvent("not_an_object", f"expected a JSON object, got {type(doc).__name__}")
    return event_from_mapping(doc, limits, default_ts, now)


def event_from_mapping(
    doc: dict[str, Any], limits: Limits, default_ts: float | None, now: float | None = None
) -> Event:
    unknown = doc.keys() - _KNOWN_KEYS
    if unknown:
        raise InvalidEvent("unknown_field", f"unknown keys: {', '.join(sorted(unknown)[:5])}")
    return Event(
        stream=_stream(doc.get("stream")),
        ts=_not_future(_timestamp(doc.get("ts"), default_ts), limits, now),
        values=_values(doc, limits),
        labels=_labels(doc.get("labels"), limits),
    )


def _stream(raw: Any) -> str:
    if raw is None:
        raise InvalidEvent("missing_stream", "the event has no 'stream'")
    if not isinstance(raw, str):
        raise InvalidEvent("bad_stream", f"'stream' must be a string, got {type(raw).__name__}")
    if not _valid_stream_name(raw):
        raise InvalidEvent(
            "bad_stream",
            "'stream' must be 1-200 of A-Z a-z 0-9 _ . : / - and not start with a symbol",
        )
    return raw


@functools.lru_cache(maxsize=65536)  # a worker sees the same few names over and over
def _valid_stream_name(name: str) -> bool:
    return STREAM_NAME.fullmatch(name) is not None


def _timestamp(raw: Any, default_ts: float | None) -> float:
    if raw is None:
        if default_ts is None:
            raise InvalidEvent("missing_ts", "the event has no 'ts' and the message no timestamp")
        # A broker timestamp is whatever the producer set: the same check as an event's.
        if not _MIN_TS <= default_ts <= _MAX_TS:
            raise InvalidEvent(
                "bad_ts",
                f"the event has no 'ts' and its message's {default_ts!r} is outside 1970..2200",
            )
        return default_ts
    if isinstance(raw, bool):
        raise InvalidEvent("bad_ts", "'ts' must be ISO-8601 text or epoch seconds/milliseconds")
    if isinstance(raw, _NUMBER):
        ts = _float(raw)
        if not math.isfinite(ts):
            raise InvalidEvent("bad_ts", "'ts' is not finite")
        if abs(ts) >= _MS_CUTOFF:
            ts /= 1000.0
    elif isinstance(raw, str):
        ts = _iso_timestamp(raw)
    else:
        raise InvalidEvent("bad_ts", "'ts' must be ISO-8601 text or epoch seconds/milliseconds")
    if not _MIN_TS <= ts <= _MAX_TS:
        raise InvalidEvent("bad_ts", f"'ts' {raw!r} is outside 1970..2200")
    return ts


def _not_future(ts: float, limits: Limits, now: float | None) -> float:
    """One point far in the future would hold a stream's state there (an alert that never
    resolves, a `for:` that never completes): rejected, not judged."""
    skew = limits.max_future_skew
    if now is not None and skew is not None and ts > now + skew:
        raise InvalidEvent(
            "future_ts",
            f"'ts' is {ts - now:.0f} s ahead of the worker's clock (max_future_skew {skew:g} s)",
        )
    return ts


def _iso_timestamp(text: str) -> float:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as error:
        raise InvalidEvent("bad_ts", f"'ts' {text[:40]!r} is not ISO-8601") from error
    if parsed.tzinfo is None:
        raise InvalidEvent("bad_ts", "'ts' has no timezone (add 'Z' for UTC)")
    return parsed.timestamp()


def _values(doc: dict[str, Any], limits: Limits) -> dict[str, float]:
    has_value, has_fields = "value" in doc, "fields" in doc
    if has_value == has_fields:
        raise InvalidEvent("bad_value", "an event carries exactly one of 'value' or 'fields'")
    if has_value:
        return {VALUE_FIELD: _number(doc["value"], "value")}
    fields = doc["fields"]
    if not isinstance(fields, dict) or not fields:
        raise InvalidEvent("bad_fields", "'fields' must be a non-empty object of numbers")
    if len(fields) > limits.max_fields:
        raise InvalidEvent("bad_fields", f"{len(fields)} fields > max_fields {limits.max_fields}")
    values = {}
    for name, raw in fields.items():
        if not FIELD_NAME.fullmatch(name):
            raise InvalidEvent("bad_fields", f"field name {name[:40]!r} is not allowed")
        values[name] = _number(raw, f"fields.{name}")
    return values


def _number(raw: Any, where: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, _NUMBER):
        raise InvalidEvent("bad_value", f"'{where}' must be a number, got {type(raw).__name__}")
    value = _float(raw)
    if not math.isfinite(value):
        raise InvalidEvent("bad_value", f"'{where}' is not finite")
    return value


def _float(raw: int | float) -> float:
    try:
        return float(raw)
    except OverflowError:  # an int beyond 1e308 (orjson never makes one; json.loads does)
        return math.inf


def _labels(raw: Any, limits: Limits) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidEvent("bad_labels", "'labels' must be an object of strings")
    if len(raw) > limits.max_labels:
        raise InvalidEvent("bad_labels", f"{len(raw)} labels > max_labels {limits.max_labels}")
    for name, value in raw.items():
        if not LABEL_NAME.fullmatch(name):
            raise InvalidEvent("bad_labels", f"label name {name[:40]!r} is not allowed")
        if name in RESERVED_LABELS:
            raise InvalidEvent("bad_labels", f"label {name!r} is reserved for the daemon")
        if not isinstance(value, str):
            raise InvalidEvent("bad_labels", f"label {name!r} must be a string")
        if len(value) > MAX_LABEL_VALUE or _has_control(value):
            raise InvalidEvent(
                "bad_labels",
                f"label {name!r} is longer than {MAX_LABEL_VALUE} or has control characters",
            )
    return dict(raw)


def _has_control(text: str) -> bool:
    # isprintable() is False for every rejected category (and a few allowed ones, such as
    # U+00A0): the per-character look-up runs only for those rare values.
    return not text.isprintable() and any(
        unicodedata.category(char) in _REJECTED_CATEGORIES for char in text
    )
