"""Routing, inhibition and silences in the config, as in Alertmanager: the `route` tree,
`inhibit_rules` and `silences`, with matchers written the way Alertmanager writes them
(`severity="critical"`, `stream=~"checkout\\..*"`, `region!="us"`, `team!~"x|y"`).

Regular expressions are anchored at both ends and use RE2's syntax, as in Alertmanager
(which uses Go's RE2), and run on RE2 (the `google-re2` package): matching takes time
linear in the label value whatever the pattern, so no matcher can freeze the worker
(Python's `re` backtracks: `([a-z]+)*-prod` against 32 letters runs for minutes).
What RE2 refuses (backreferences, lookaround) is refused where the matcher is read:
config, API and the silences topic alike.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any

import re2
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from anomalyd.config.durations import Duration
from anomalyd.domain import format_time

#: `group_by: ['...']` groups by every label, as in Alertmanager.
ALL_LABELS = "..."

_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Matched against the stripped text: a trailing `\s*` after a lazy value backtracks in
#: quadratic time (a 60 KB matcher of spaces took 9 s).
_MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*)", re.DOTALL)
_SILENCE_ID = r"^[A-Za-z0-9_.:\-]{1,100}$"
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "r": "\r", "t": "\t"}
_ESCAPES.update({"a": "\a", "b": "\b", "f": "\f", "v": "\v"})
_HEX_DIGITS = {"x": 2, "u": 4, "U": 8}


class MatchOp(StrEnum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


_OP_ORDER = {op: i for i, op in enumerate(MatchOp)}


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher. A missing label matches as the empty string, as in Alertmanager
    (so `region!="us"` matches alerts without a region, and `region=""` matches only those)."""

    name: str
    op: MatchOp
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        match self.op:
            case MatchOp.EQUAL:
                return actual == self.value
            case MatchOp.NOT_EQUAL:
                return actual != self.value
            case MatchOp.REGEX:
                return _fullmatch(self.value, actual)
            case MatchOp.NOT_REGEX:
                return not _fullmatch(self.value, actual)

    def __str__(self) -> str:
        return f"{self.name}{self.op.value}{go_quote(self.value)}"

    def sort_key(self) -> tuple[str, int, str]:
        """Alertmanager's order (name, then type, then value): route keys depend on it."""
        return (self.name, _OP_ORDER[self.op], self.value)

    def to_api(self) -> dict[str, Any]:
        """Alertmanager's API v2 shape."""
        regex = self.op in (MatchOp.REGEX, MatchOp.NOT_REGEX)
        equal = self.op in (MatchOp.EQUAL, MatchOp.REGEX)
        return {"name": self.name, "value": self.value, "isRegex": regex, "isEqual": equal}


def _re2_options() -> re2.Options:
    options = re2.Options()
    # RE2 prints a refused pattern to stderr itself; we raise it as a ValueError instead,
    # which the config check, the API and the silences topic report in their own way.
    options.log_errors = False
    return options


_RE2_OPTIONS = _re2_options()


@lru_cache(maxsize=4096)
def _anchored(pattern: str) -> re2._Regexp[str]:
    """Compiled on its own (so `)` cannot close a wrapper group); used with fullmatch,
    which anchors it at both ends. Raises ValueError for a pattern RE2 refuses."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as error:
        raise ValueError(_re2_reason(error)) from None
    except UnicodeEncodeError:  # a lone surrogate, from a YAML escape: RE2 reads UTF-8
        raise ValueError("the pattern is not valid Unicode text") from None


def _re2_reason(error: re2.error) -> str:
    """RE2 says why in bytes (`b'invalid escape sequence: \\1'`): as text."""
    reason = error.args[0] if error.args else ""
    text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
    return f"{text} (RE2 syntax, as in Alertmanager: no backreferences or lookaround)"


def _fullmatch(pattern: str, value: str) -> bool:
    try:
        return _anchored(pattern).fullmatch(value) is not None
    except UnicodeEncodeError:  # a lone surrogate in the value: match what can be encoded
        text = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        return _anchored(pattern).fullmatch(text) is not None


def matches_all(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    return all(matcher.matches(labels) for matcher in matchers)


def go_quote(value: str) -> str:
    """Quote as Go's %q does for the characters that matter here, so a quote or a newline
    in a value cannot break a matcher or a group key."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


def parse_matcher(text: str) -> Matcher:
    """`name="value"`, `name!="value"`, `name=~"regex"`, `name!~"regex"`; the value may be
    left unquoted when it has no spaces or quotes. Raises ValueError saying what is wrong."""
    found = _MATCHER.fullmatch(text.strip())
    if found is None:
        raise ValueError(
            f'{text!r} is not a matcher (examples: severity="critical", '
            f'stream=~"checkout\\\\..*", region!="us")'
        )
    name, op, raw = found.groups()
    value = _unquote(raw) if raw.startswith('"') else _bare(raw)
    return _checked(Matcher(name, MatchOp(op), value))


def _bare(raw: str) -> str:
    if any(c in raw for c in '"\\ ,{}') or any(c.isspace() for c in raw):
        raise ValueError(f"matcher value {raw!r} must be quoted")
    return raw


def _unquote(raw: str) -> str:
    """The inverse of go_quote, plus Go's other escapes (\\a \\b \\f \\v \\xHH \\uHHHH)."""
    if len(raw) < 2 or not raw.endswith('"'):
        raise ValueError(f"matcher value {raw} has no closing quote")
    body, out, i = raw[1:-1], [], 0
    while i < len(body):
        char = body[i]
        if char == '"':
            raise ValueError(f"matcher value {raw} has an unescaped quote inside")
        if char != "\\":
            out.append(char)
            i += 1
            continue
        decoded, i = _escape(body, i + 1, raw)
        out.append(decoded)
    return "".join(out)


def _escape(body: str, i: int, raw: str) -> tuple[str, int]:
    code = body[i : i + 1]
    if code in _ESCAPES:
        return _ESCAPES[code], i + 1
    if code in _HEX_DIGITS:
        digits = body[i + 1 : i + 1 + _HEX_DIGITS[code]]
        if len(digits) == _HEX_DIGITS[code] and all(c in "0123456789abcdefABCDEF" for c in digits):
            point = int(digits, 16)
            if point <= 0x10FFFF:
                return chr(point), i + 1 + len(digits)
    raise ValueError(f"matcher value {raw} has an invalid escape \\{code}")


def _checked(matcher: Matcher) -> Matcher:
    if matcher.op in (MatchOp.REGEX, MatchOp.NOT_REGEX):
        try:
            _anchored(matcher.value)
        except ValueError as error:
            raise ValueError(f"{matcher}: invalid regular expression: {error}") from None
    return matcher


def coerce_matcher(raw: Any) -> Matcher:
    """A matcher from its text, or from Alertmanager's API object
    (`{"name", "value", "isRegex", "isEqual"}`)."""
    if isinstance(raw, Matcher):
        return raw
    if isinstance(raw, str):
        return parse_matcher(raw)
    if isinstance(raw, Mapping):
        return _from_api(raw)
    raise ValueError('a matcher is text like severity="critical"')


def _from_api(raw: Mapping[str, Any]) -> Matcher:
    name, value = raw.get("name"), raw.get("value")
    regex, equal = raw.get("isRegex", False), raw.get("isEqual", True)
    if not isinstance(name, str) or not _LABEL_NAME.fullmatch(name):
        raise ValueError("a matcher's name must be a label name")
    if not isinstance(value, str) or not isinstance(regex, bool) or not isinstance(equal, bool):
        raise ValueError("a matcher has a text value and boolean isRegex and isEqual")
    ops = {
        (False, True): MatchOp.EQUAL,
        (False, False): MatchOp.NOT_EQUAL,
        (True, True): MatchOp.REGEX,
        (True, False): MatchOp.NOT_REGEX,
    }
    return _checked(Matcher(name, ops[(regex, equal)], value))


#: A matcher field: written as text in YAML, printed as text.
MatcherField = Annotated[
    Matcher,
    PlainValidator(coerce_matcher),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string"}),
]


#: The times a silence may name: from the epoch to the end of year 9999, the last time
#: RFC 3339 (and Python's datetime) can write. `endsAt: 1e300` is a mistake to point out,
#: not a time to store: nothing could print it back.
MIN_TIME, MAX_TIME = 0.0, 253_402_300_799.0


def parse_timestamp(raw: Any) -> float:
    """Epoch seconds from RFC 3339 text with a time zone (`2026-11-22T10:00:00Z`) or a number,
    from 1970 to the end of 9999."""
    seconds = _epoch_seconds(raw)
    if not MIN_TIME <= seconds <= MAX_TIME:  # NaN fails this too
        raise ValueError(
            "out of range: a time is from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z"
        )
    return seconds


def _epoch_seconds(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError("a time is RFC 3339 text like 2026-11-22T10:00:00Z")
    if isinstance(raw, int | float):
        try:
            return float(raw)
        except OverflowError:  # an int too large for a float (YAML reads any size)
            return math.inf
    if isinstance(raw, datetime):
        stamp = raw
    elif isinstance(raw, str):
        try:
            stamp = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
        except ValueError as error:
            raise ValueError(f"{raw!r} is not an RFC 3339 time") from error
    else:
        raise ValueError("a time is RFC 3339 text like 2026-11-22T10:00:00Z")
    if stamp.tzinfo is None:
        raise ValueError(f"{raw!r} has no time zone (end it with Z or +00:00)")
    return stamp.timestamp()


#: A point in time: RFC 3339 text in files and the API, epoch seconds inside.
Timestamp = Annotated[
    float,
    PlainValidator(parse_timestamp),
    PlainSerializer(format_time, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _label_names(names: list[str]) -> list[str]:
    for name in names:
        if not _LABEL_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a label name")
    if len(set(names)) != len(names):
        raise ValueError("label names must not repeat")
    return names


class Route(_Strict):
    """A node of the routing tree. Unset options are inherited from the parent; the root's
    unset options take Alertmanager's defaults (see `ROOT_DEFAULTS`)."""

    receiver: str | None = None
    group_by: list[str] | None = Field(
        None, description="Label names, or ['...'] for all labels; [] puts all in one group."
    )
    group_wait: Duration | None = None
    group_interval: Duration | None = Field(None, gt=0)
    repeat_interval: Duration | None = Field(None, gt=0)
    matchers: list[MatcherField] = []
    continue_: bool = Field(False, alias="continue")
    routes: list[Route] = []

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, names: list[str] | None) -> list[str] | None:
        if names is None or names == [ALL_LABELS]:
            return names
        if ALL_LABELS in names:
            raise ValueError("'...' (all labels) must be the only entry of group_by")
        return _label_names(names)


#: Alertmanager's defaults for options the root route leaves unset.
ROOT_DEFAULTS: Mapping[str, Any] = {
    "group_by": [],
    "group_wait": 30.0,
    "group_interval": 300.0,
    "repeat_interval": 4 * 3600.0,
}


def check_root(route: Route) -> list[tuple[tuple[str | int, ...], str]]:
    """The root route's own constraints, as (location, problem)."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    if route.receiver is None:
        problems.append((("receiver",), "the root route needs a receiver"))
    if route.matchers:
        problems.append((("matchers",), "the root route matches every alert: no matchers"))
    if route.continue_:
        problems.append((("continue",), "the root route cannot have continue"))
    return problems


def route_receivers(
    route: Route, path: tuple[str | int, ...] = ("route",)
) -> list[tuple[tuple[str | int, ...], str]]:
    """Every receiver named in the tree, with the location of the key that names it."""
    found = [((*path, "receiver"), route.receiver)] if route.receiver is not None else []
    for i, child in enumerate(route.routes):
        found.extend(route_receivers(child, (*path, "routes", i)))
    return found


def default_route(receivers: Sequence[str]) -> Route | None:
    """The tree used when the config has no `route`: every receiver gets every alert, one
    group per alertname and stream, sent at once (group_wait 0) and updated within 1 s.
    None when there is no receiver at all."""
    if not receivers:
        return None
    options: dict[str, Any] = {
        "group_by": ["alertname", "stream"],
        "group_wait": 0.0,
        "group_interval": 1.0,
    }
    if len(receivers) == 1:
        return Route(receiver=receivers[0], **options)
    children = [Route(receiver=name, continue_=True) for name in receivers]
    return Route(receiver=receivers[0], routes=children, **options)


class InhibitRule(_Strict):
    """While an alert matching `source_matchers` fires, alerts matching `target_matchers`
    with the same values of the `equal` labels are muted (Alertmanager's inhibition)."""

    source_matchers: list[MatcherField] = Field(min_length=1)
    target_matchers: list[MatcherField] = Field(min_length=1)
    equal: list[str] = []

    @field_validator("equal")
    @classmethod
    def _equal(cls, names: list[str]) -> list[str]:
        return _label_names(names)


class Silence(_Strict):
    """Mutes the alerts its matchers all match from `startsAt` until `endsAt`. Written with
    Alertmanager's API field names, so a silence from `GET /api/silences` can be pasted
    into the config file."""

    id: str | None = Field(None, pattern=_SILENCE_ID)
    matchers: list[MatcherField] = Field(min_length=1)
    starts_at: Timestamp | None = Field(None, alias="startsAt")
    ends_at: Timestamp | None = Field(None, alias="endsAt")
    created_by: str = Field("", alias="createdBy", max_length=200)
    comment: str = Field("", max_length=2000)
    updated_at: Timestamp | None = Field(None, alias="updatedAt")

    @model_validator(mode="after")
    def _ordered(self) -> Silence:
        starts, ends = self.starts_at, self.ends_at
        if starts is not None and ends is not None and ends <= starts:
            raise ValueError("endsAt must be after startsAt")
        return self

    def stable_id(self) -> str:
        """Its id, or for a config silence without one, an id derived from its content
        (the same on every worker and after every restart)."""
        if self.id is not None:
            return self.id
        text = "|".join(
            [",".join(str(m) for m in self.matchers), repr(self.starts_at), repr(self.ends_at)]
        )
        return "config-" + hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_api(self) -> dict[str, Any]:
        """Alertmanager's API v2 fields (the state is added by whoever knows the time)."""
        return {
            "id": self.stable_id(),
            "matchers": [matcher.to_api() for matcher in self.matchers],
            "startsAt": _time_or_none(self.starts_at),
            "endsAt": _time_or_none(self.ends_at),
            "updatedAt": _time_or_none(self.updated_at),
            "createdBy": self.created_by,
            "comment": self.comment,
        }


def _time_or_none(value: float | None) -> str | None:
    return format_time(value) if value is not None else None


Location = tuple[str | int, ...]


def check_routing(
    route: Route | None, silences: Sequence[Silence], receivers: Sequence[str]
) -> list[tuple[Location, str]]:
    """Cross references and the root's constraints, as (location, problem): every route's
    receiver must be defined in `receivers`, and silence ids must be unique."""
    problems: list[tuple[Location, str]] = []
    if route is not None:
        problems.extend((("route", *loc), text) for loc, text in check_root(route))
        known = set(receivers)
        for loc, name in route_receivers(route):
            if name not in known:
                defined = ", ".join(receivers) or "none"
                problems.append((loc, f"receiver {name!r} is not defined (receivers: {defined})"))
    seen: set[str] = set()
    for i, silence in enumerate(silences):
        if silence.id is not None and silence.id in seen:
            problems.append((("silences", i, "id"), f"silence id {silence.id!r} is repeated"))
        seen.add(silence.stable_id())
    return problems
