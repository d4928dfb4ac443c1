"""Event parsing: a table of accepted events, a table of every rejection code, and
properties that nothing but an Event or InvalidEvent ever comes out."""

from __future__ import annotations

import json
import string
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from anomalyd.domain import VALUE_FIELD, Event
from anomalyd.ingest.parse import (
    LABEL_NAME,
    MAX_LABEL_VALUE,
    RESERVED_LABELS,
    STREAM_NAME,
    InvalidEvent,
    Limits,
    event_from_mapping,
    parse_event,
)

LIMITS = Limits()
T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def raw(**doc: Any) -> bytes:
    return orjson.dumps(doc)


# --- accepted events ----------------------------------------------------------------------------

VALID = [
    pytest.param(
        raw(stream="cpu", ts=T0, value=1.5), Event("cpu", T0, {VALUE_FIELD: 1.5}), id="value"
    ),
    pytest.param(
        raw(stream="cpu", ts=T0, value=3), Event("cpu", T0, {VALUE_FIELD: 3.0}), id="int-value"
    ),
    pytest.param(
        raw(stream="cpu", ts=T0, value=-0.25),
        Event("cpu", T0, {VALUE_FIELD: -0.25}),
        id="negative-value",
    ),
    pytest.param(
        raw(stream="host-1.cpu:user/total", ts=T0, value=1),
        Event("host-1.cpu:user/total", T0, {VALUE_FIELD: 1.0}),
        id="stream-with-symbols",
    ),
    pytest.param(
        raw(stream="s", ts=T0, fields={"a": 1, "b.c": -2.5, "_d-e": 0}),
        Event("s", T0, {"a": 1.0, "b.c": -2.5, "_d-e": 0.0}),
        id="fields",
    ),
    pytest.param(
        raw(stream="s", ts=T0, value=1, labels={"host": "h1", "_zone": "eu west ü"}),
        Event("s", T0, {VALUE_FIELD: 1.0}, {"host": "h1", "_zone": "eu west ü"}),
        id="labels",
    ),
    pytest.param(
        raw(stream="s", ts=T0, value=1, labels={}),
        Event("s", T0, {VALUE_FIELD: 1.0}),
        id="empty-labels",
    ),
    pytest.param(
        raw(stream="s", ts=T0, value=1, labels={"h": ""}),
        Event("s", T0, {VALUE_FIELD: 1.0}, {"h": ""}),
        id="empty-label-value",
    ),
    pytest.param(
        raw(stream="s", ts=T0, value=1, labels={"h": "x" * MAX_LABEL_VALUE}),
        Event("s", T0, {VALUE_FIELD: 1.0}, {"h": "x" * MAX_LABEL_VALUE}),
        id="longest-label-value",
    ),
    pytest.param(
        raw(stream="s", ts="2023-11-14T22:13:20Z", value=1),
        Event("s", T0, {VALUE_FIELD: 1.0}),
        id="iso-z",
    ),
    pytest.param(
        raw(stream="s", ts="2023-11-14t22:13:20z", value=1),
        Event("s", T0, {VALUE_FIELD: 1.0}),
        id="iso-lowercase-z",
    ),
    pytest.param(
        raw(stream="s", ts="2023-11-14T22:13:20.250Z", value=1),
        Event("s", T0 + 0.25, {VALUE_FIELD: 1.0}),
        id="iso-fraction",
    ),
    pytest.param(
        raw(stream="s", ts="2023-11-15T00:13:20+02:00", value=1),
        Event("s", T0, {VALUE_FIELD: 1.0}),
        id="iso-offset",
    ),
    pytest.param(
        raw(stream="s", ts="2023-11-14T17:13:20-05:00", value=1),
        Event("s", T0, {VALUE_FIELD: 1.0}),
        id="iso-negative-offset",
    ),
    pytest.param(
        raw(stream="s", ts=1_700_000_000, value=1),
        Event("s", T0, {VALUE_FIELD: 1.0}),
        id="epoch-seconds-int",
    ),
    pytest.param(
        raw(stream="s", ts=1_700_000_000.5, value=1),
        Event("s", T0 + 0.5, {VALUE_FIELD: 1.0}),
        id="epoch-seconds-float",
    ),
    pytest.param(
        raw(stream="s", ts=1_700_000_000_500, value=1),
        Event("s", T0 + 0.5, {VALUE_FIELD: 1.0}),
        id="epoch-milliseconds",
    ),
    pytest.param(raw(stream="s", ts=0, value=1), Event("s", 0.0, {VALUE_FIELD: 1.0}), id="epoch-0"),
]


@pytest.mark.parametrize(("message", "expected"), VALID)
def test_valid_events(message: bytes, expected: Event) -> None:
    event = parse_event(message, LIMITS)
    assert event.stream == expected.stream
    assert event.ts == pytest.approx(expected.ts, abs=1e-6)
    assert dict(event.values) == dict(expected.values)
    assert dict(event.labels) == dict(expected.labels)


def test_missing_ts_uses_the_default() -> None:
    event = parse_event(raw(stream="s", value=1), LIMITS, default_ts=T0)
    assert event.ts == T0


def test_event_ts_beats_the_default() -> None:
    event = parse_event(raw(stream="s", ts=T0, value=1), LIMITS, default_ts=T0 + 99)
    assert event.ts == T0


def test_null_ts_uses_the_default() -> None:
    event = parse_event(raw(stream="s", ts=None, value=1), LIMITS, default_ts=T0)
    assert event.ts == T0


def test_labels_are_a_copy() -> None:
    doc: dict[str, Any] = {"stream": "s", "ts": T0, "value": 1, "labels": {"a": "b"}}
    event = event_from_mapping(doc, LIMITS, None)
    doc["labels"]["a"] = "changed"
    assert event.labels == {"a": "b"}


def test_limits_at_the_edge_are_accepted() -> None:
    limits = Limits(max_event_bytes=400, max_labels=2, max_fields=2)
    message = raw(stream="s", ts=T0, fields={"a": 1, "b": 2}, labels={"x": "1", "y": "2"})
    assert len(message) <= 400
    event = parse_event(message, limits)
    assert len(event.values) == 2
    assert len(event.labels) == 2
    exact = message + b" " * (400 - len(message))
    assert parse_event(exact, limits).stream == "s"


# --- rejections ---------------------------------------------------------------------------------

BIG = Limits(max_event_bytes=1 << 20)
CODES = {
    "oversized",
    "future_ts",
    "invalid_json",
    "not_an_object",
    "unknown_field",
    "missing_stream",
    "bad_stream",
    "missing_ts",
    "bad_ts",
    "bad_value",
    "bad_fields",
    "bad_labels",
}

INVALID = [
    ("oversized", b" " * 65537 + b"{}", LIMITS),
    ("oversized", raw(stream="s", ts=T0, value=1), Limits(max_event_bytes=10)),
    ("invalid_json", b"", LIMITS),
    ("invalid_json", b"{", LIMITS),
    ("invalid_json", b"{'stream': 's'}", LIMITS),
    ("invalid_json", b'{"stream": "s", "value": NaN, "ts": 1}', LIMITS),
    ("invalid_json", b'{"stream": "s", "value": 1e400, "ts": 1}', LIMITS),
    ("invalid_json", b"\xff\xfe", LIMITS),
    ("invalid_json", b'{"stream": "\xff"}', LIMITS),
    ("invalid_json", b'{"stream": "\\ud800"}', LIMITS),
    ("invalid_json", b"[" * 2000 + b"]" * 2000, LIMITS),
    ("not_an_object", b"[]", LIMITS),
    ("not_an_object", b"null", LIMITS),
    ("not_an_object", b"1", LIMITS),
    ("not_an_object", b'"text"', LIMITS),
    ("unknown_field", raw(stream="s", ts=T0, value=1, extra=1), LIMITS),
    ("unknown_field", raw(stream="s", ts=T0, value=1, Stream="s"), LIMITS),
    ("missing_stream", raw(ts=T0, value=1), LIMITS),
    ("missing_stream", raw(stream=None, ts=T0, value=1), LIMITS),
    ("bad_stream", raw(stream=5, ts=T0, value=1), LIMITS),
    ("bad_stream", raw(stream=["s"], ts=T0, value=1), LIMITS),
    ("bad_stream", raw(stream="", ts=T0, value=1), LIMITS),
    ("bad_stream", raw(stream="-s", ts=T0, value=1), LIMITS),
    ("bad_stream", raw(stream=".s", ts=T0, value=1), LIMITS),
    ("bad_stream", raw(stream="a b", ts=T0, value=1), LIMITS),
    ("bad_stream", raw(stream="a\n", ts=T0, value=1), LIMITS),
    ("bad_stream", raw(stream="ü", ts=T0, value=1), LIMITS),
    ("bad_stream", raw(stream="s" * 201, ts=T0, value=1), LIMITS),
    ("missing_ts", raw(stream="s", value=1), LIMITS),
    ("missing_ts", raw(stream="s", ts=None, value=1), LIMITS),
    ("bad_ts", raw(stream="s", ts=True, value=1), LIMITS),
    ("bad_ts", raw(stream="s", ts=False, value=1), LIMITS),
    ("bad_ts", raw(stream="s", ts="2023-11-14T22:13:20", value=1), LIMITS),  # naive
    ("bad_ts", raw(stream="s", ts="2023-11-14", value=1), LIMITS),  # naive date
    ("bad_ts", raw(stream="s", ts="yesterday", value=1), LIMITS),
    ("bad_ts", raw(stream="s", ts="", value=1), LIMITS),
    ("bad_ts", raw(stream="s", ts="1700000000", value=1), LIMITS),  # epoch as text is naive
    ("bad_ts", raw(stream="s", ts="2023-11-14T22:13:20ZZ", value=1), LIMITS),
    ("bad_ts", raw(stream="s", ts="2023-11-14T22:13:20+24:00", value=1), LIMITS),
    ("bad_ts", raw(stream="s", ts="1969-12-31T23:59:59Z", value=1), LIMITS),
    ("bad_ts", raw(stream="s", ts="2200-01-02T00:00:00Z", value=1), LIMITS),
    ("bad_ts", raw(stream="s", ts="0001-01-01T00:00:00+01:00", value=1), LIMITS),
    ("bad_ts", raw(stream="s", ts="9999-12-31T23:59:59-23:59", value=1), LIMITS),
    ("bad_ts", raw(stream="s", ts=-1, value=1), LIMITS),
    ("bad_ts", raw(stream="s", ts=-1e12, value=1), LIMITS),
    ("bad_ts", raw(stream="s", ts=1e18, value=1), LIMITS),  # nanoseconds
    ("bad_ts", raw(stream="s", ts=[T0], value=1), LIMITS),
    ("bad_ts", raw(stream="s", ts={"s": T0}, value=1), LIMITS),
    ("bad_value", raw(stream="s", ts=T0), LIMITS),  # neither value nor fields
    ("bad_value", raw(stream="s", ts=T0, value=1, fields={"a": 1}), LIMITS),  # both
    ("bad_value", raw(stream="s", ts=T0, value=True), LIMITS),
    ("bad_value", raw(stream="s", ts=T0, value=False), LIMITS),
    ("bad_value", raw(stream="s", ts=T0, value="1"), LIMITS),
    ("bad_value", raw(stream="s", ts=T0, value=None), LIMITS),
    ("bad_value", raw(stream="s", ts=T0, value=[1]), LIMITS),
    ("bad_value", raw(stream="s", ts=T0, fields={"a": "1"}), LIMITS),
    ("bad_value", raw(stream="s", ts=T0, fields={"a": True}), LIMITS),
    ("bad_value", raw(stream="s", ts=T0, fields={"a": None}), LIMITS),
    ("bad_fields", raw(stream="s", ts=T0, fields={}), LIMITS),
    ("bad_fields", raw(stream="s", ts=T0, fields=[1, 2]), LIMITS),
    ("bad_fields", raw(stream="s", ts=T0, fields=1), LIMITS),
    ("bad_fields", raw(stream="s", ts=T0, fields=None), LIMITS),
    ("bad_fields", raw(stream="s", ts=T0, fields={"1a": 1}), LIMITS),
    ("bad_fields", raw(stream="s", ts=T0, fields={"": 1}), LIMITS),
    ("bad_fields", raw(stream="s", ts=T0, fields={"a b": 1}), LIMITS),
    ("bad_fields", raw(stream="s", ts=T0, fields={"a" * 101: 1}), LIMITS),
    ("bad_fields", raw(stream="s", ts=T0, fields={f"f{i}": i for i in range(65)}), LIMITS),
    ("bad_labels", raw(stream="s", ts=T0, value=1, labels=["a"]), LIMITS),
    ("bad_labels", raw(stream="s", ts=T0, value=1, labels="a=b"), LIMITS),
    ("bad_labels", raw(stream="s", ts=T0, value=1, labels={"a": 1}), LIMITS),
    ("bad_labels", raw(stream="s", ts=T0, value=1, labels={"a": None}), LIMITS),
    ("bad_labels", raw(stream="s", ts=T0, value=1, labels={"a": True}), LIMITS),
    ("bad_labels", raw(stream="s", ts=T0, value=1, labels={"a": {"b": "c"}}), LIMITS),
    ("bad_labels", raw(stream="s", ts=T0, value=1, labels={"1a": "x"}), LIMITS),
    ("bad_labels", raw(stream="s", ts=T0, value=1, labels={"a.b": "x"}), LIMITS),
    ("bad_labels", raw(stream="s", ts=T0, value=1, labels={"a-b": "x"}), LIMITS),
    ("bad_labels", raw(stream="s", ts=T0, value=1, labels={"": "x"}), LIMITS),
    ("bad_labels", raw(stream="s", ts=T0, value=1, labels={"a" * 101: "x"}), LIMITS),
    *[
        ("bad_labels", raw(stream="s", ts=T0, value=1, labels={name: "x"}), LIMITS)
        for name in sorted(RESERVED_LABELS)
    ],
    ("bad_labels", raw(stream="s", ts=T0, value=1, labels={"a": "x\r\ny: z"}), LIMITS),
    ("bad_labels", raw(stream="s", ts=T0, value=1, labels={"a": "x\ny"}), LIMITS),
    ("bad_labels", raw(stream="s", ts=T0, value=1, labels={"a": "x\x00"}), LIMITS),
    ("bad_labels", raw(stream="s", ts=T0, value=1, labels={"a": "\ttab"}), LIMITS),
    ("bad_labels", raw(stream="s", ts=T0, value=1, labels={"a": "del\x7f"}), LIMITS),
    ("bad_labels", raw(stream="s", ts=T0, value=1, labels={"a": "\x1b[31m"}), LIMITS),
    ("bad_labels", raw(stream="s", ts=T0, value=1, labels={f"l{i}": "x" for i in range(33)}), BIG),
    ("bad_labels", raw(stream="s", ts=T0, value=1, labels={"a": "x" * 1025}), LIMITS),
    ("bad_labels", raw(stream="s", ts=T0, value=1, labels={"a": "x"}), Limits(max_labels=0)),
    ("bad_labels", raw(stream="s", ts=T0, value=1, labels={"a": "one\u0085two"}), LIMITS),
    ("bad_labels", raw(stream="s", ts=T0, value=1, labels={"a": "one\u2028two"}), LIMITS),
    ("bad_labels", raw(stream="s", ts=T0, value=1, labels={"a": "admin\u202egnp"}), LIMITS),
    ("future_ts", raw(stream="s", ts=T0 + 301, value=1), Limits(max_future_skew=300)),
    ("future_ts", raw(stream="s", ts="2199-12-31T00:00:00Z", value=1), Limits(max_future_skew=300)),
]


@pytest.mark.parametrize(
    ("code", "message", "limits"),
    INVALID,
    ids=[f"{i}-{case[0]}" for i, case in enumerate(INVALID)],
)
def test_rejections(code: str, message: bytes, limits: Limits) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(message, limits, now=T0)
    assert caught.value.code == code
    assert caught.value.detail
    assert str(caught.value).startswith(f"{code}: ")


def test_every_code_is_in_the_table() -> None:
    assert {case[0] for case in INVALID} == CODES


def test_oversized_is_checked_before_decoding() -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(b"\xff" * 100, Limits(max_event_bytes=99))
    assert caught.value.code == "oversized"


def test_a_broker_timestamp_is_range_checked_like_an_event_ts() -> None:
    """The year 10000 is a valid Kafka timestamp but no datetime: building the alert of
    such an event raised, and stopped the worker."""
    message = raw(stream="s", value=1)
    for default in (253_402_300_800.0, -0.001, 7_258_118_400.5):
        with pytest.raises(InvalidEvent) as caught:
            parse_event(message, LIMITS, default_ts=default)
        assert caught.value.code == "bad_ts"
    assert parse_event(message, LIMITS, default_ts=T0).ts == T0


def test_the_future_skew_is_measured_from_now() -> None:
    limits = Limits(max_future_skew=300)
    assert parse_event(raw(stream="s", ts=T0 + 300, value=1), limits, now=T0).ts == T0 + 300
    assert parse_event(raw(stream="s", ts=T0 + 900, value=1), limits).ts == T0 + 900  # no now
    with pytest.raises(InvalidEvent) as caught:  # a broker timestamp too
        parse_event(raw(stream="s", value=1), limits, default_ts=T0 + 301, now=T0)
    assert caught.value.code == "future_ts"


_SEPARATORS = st.characters(categories=["Cc", "Cf", "Zl", "Zp"], exclude_characters="\x00")


@given(st.text(max_size=20), _SEPARATORS, st.text(max_size=20))
def test_any_control_format_or_line_separator_in_a_label_is_rejected(
    before: str, bad: str, after: str
) -> None:
    """U+0085 NEXT LINE, U+2028/2029, bidi overrides, zero-width characters: each can
    break or disguise a line wherever a label is shown."""
    value = before + bad + after
    with pytest.raises(InvalidEvent) as caught:
        parse_event(raw(stream="s", ts=T0, value=1, labels={"team": value}), LIMITS)
    assert caught.value.code == "bad_labels"


def test_unknown_keys_are_named_in_the_detail() -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(raw(stream="s", ts=T0, value=1, zzz=1, aaa=2), LIMITS)
    assert "aaa, zzz" in caught.value.detail


# --- properties ---------------------------------------------------------------------------------


def _parse_or_reject(message: bytes, default_ts: float | None = None) -> None:
    try:
        event = parse_event(message, LIMITS, default_ts)
    except InvalidEvent as error:
        code = error.code
    else:
        assert isinstance(event, Event)
        return
    assert code in CODES  # a bounded set: it labels a metric


@given(st.binary(max_size=512), st.one_of(st.none(), st.floats()))
def test_arbitrary_bytes_give_an_event_or_invalid_event(message: bytes, default: float) -> None:
    _parse_or_reject(message, default)


_KEYS = st.one_of(
    st.sampled_from(["stream", "ts", "value", "fields", "labels"]),
    st.sampled_from(sorted(RESERVED_LABELS)),
    st.text(max_size=8),
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # huge ints too: stdlib json writes them, orjson cannot read them as int
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=30),
    st.sampled_from(["2023-11-14T22:13:20Z", "2023-11-14T22:13:20", "s", "\x00", "\u2028"]),
)
_JSONISH = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(_KEYS, children, max_size=6),
    ),
    max_leaves=30,
)
_DOCS = st.dictionaries(_KEYS, _JSONISH, max_size=6)


def _nested(depth: int) -> Any:
    doc: Any = 1
    for _ in range(depth):
        doc = {"labels": doc}
    return doc


@given(st.one_of(_JSONISH, _DOCS, st.integers(0, 900).map(_nested)))
def test_arbitrary_json_gives_an_event_or_invalid_event(doc: Any) -> None:
    _parse_or_reject(json.dumps(doc).encode())


@given(_DOCS, st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)))
def test_arbitrary_mappings_give_an_event_or_invalid_event(
    doc: dict[str, Any], default: float | None
) -> None:
    # event_from_mapping is public (backtest reads files with it), so it keeps the same promise
    # even for values the stdlib json reader produces and orjson never would (ints beyond 1e308).
    try:
        event = event_from_mapping(doc, LIMITS, default)
    except InvalidEvent:
        return
    assert isinstance(event, Event)


@pytest.mark.parametrize("where", ["value", "ts"])
def test_ints_too_big_for_a_float_are_invalid(where: str) -> None:
    doc: dict[str, Any] = {"stream": "s", "ts": T0, "value": 1, where: 10**400}
    with pytest.raises(InvalidEvent) as caught:
        event_from_mapping(doc, LIMITS, None)
    assert caught.value.code == f"bad_{where}"


_STREAMS = st.from_regex(STREAM_NAME, fullmatch=True)
_LABEL_NAMES = st.from_regex(LABEL_NAME, fullmatch=True).filter(lambda n: n not in RESERVED_LABELS)
_LABEL_VALUES = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cc", "Cf", "Cs", "Zl", "Zp"]),
    max_size=40,
)
_FINITE = st.floats(allow_nan=False, allow_infinity=False)
_FIELD_NAMES = st.text(alphabet=string.ascii_letters + string.digits + "_.-", max_size=20).map(
    lambda s: "_" + s
)


@st.composite
def _events(draw: st.DrawFn) -> Event:
    values = draw(
        st.one_of(
            _FINITE.map(lambda v: {VALUE_FIELD: v}),
            st.dictionaries(_FIELD_NAMES, _FINITE, min_size=1, max_size=8),
        )
    )
    return draw(
        st.builds(
            Event,
            stream=_STREAMS,
            ts=st.floats(min_value=0, max_value=7_258_118_400.0),
            values=st.just(values),
            labels=st.dictionaries(_LABEL_NAMES, _LABEL_VALUES, max_size=8),
        )
    )


def _document(event: Event) -> dict[str, Any]:
    doc: dict[str, Any] = {"stream": event.stream, "ts": event.ts}
    if set(event.values) == {VALUE_FIELD}:
        doc["value"] = event.values[VALUE_FIELD]
    else:
        doc["fields"] = dict(event.values)
    if event.labels:
        doc["labels"] = dict(event.labels)
    return doc


@given(_events())
def test_a_valid_event_round_trips(event: Event) -> None:
    parsed = parse_event(orjson.dumps(_document(event)), Limits(max_event_bytes=1 << 20))
    assert parsed.stream == event.stream
    assert parsed.ts == event.ts
    assert dict(parsed.values) == dict(event.values)
    assert dict(parsed.labels) == dict(event.labels)


@given(st.integers(min_value=10**11, max_value=7_258_118_400_000))
def test_epoch_milliseconds_are_divided(ms: int) -> None:
    assert parse_event(raw(stream="s", ts=ms, value=1), LIMITS).ts == ms / 1000.0


@given(st.integers(min_value=0, max_value=7_258_118_400))
def test_epoch_seconds_are_taken_as_written(seconds: int) -> None:
    assert parse_event(raw(stream="s", ts=seconds, value=1), LIMITS).ts == float(seconds)


@given(_LABEL_VALUES)
def test_other_label_values_are_accepted(value: str) -> None:
    event = parse_event(raw(stream="s", ts=T0, value=1, labels={"team": value}), LIMITS)
    assert event.labels == {"team": value}
