"""Routing, inhibition and silences in the config, as in Alertmanager: the `route` tree,
`inhibit_rules` and `silences`, with label matchers (`matchers.py`)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from anomalyd.config.durations import Duration
from anomalyd.config.matchers import LABEL_NAME, MatcherField
from anomalyd.config.strict import Strict
from anomalyd.domain import format_time

#: `group_by: ['...']` groups by every label, as in Alertmanager.
ALL_LABELS = "..."

_SILENCE_ID = r"^[A-Za-z0-9_.:\-]{1,100}$"


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


class _StrictByName(Strict):
    """A section whose fields are read by their alias (Alertmanager's camelCase) or name."""

    model_config = ConfigDict(populate_by_name=True)


def _label_names(names: list[str]) -> list[str]:
    for name in names:
        if not LABEL_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a label name")
    if len(set(names)) != len(names):
        raise ValueError("label names must not repeat")
    return names


class Route(_StrictByName):
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


class InhibitRule(_StrictByName):
    """While an alert matching `source_matchers` fires, alerts matching `target_matchers`
    with the same values of the `equal` labels are muted (Alertmanager's inhibition)."""

    source_matchers: list[MatcherField] = Field(min_length=1)
    target_matchers: list[MatcherField] = Field(min_length=1)
    equal: list[str] = []

    @field_validator("equal")
    @classmethod
    def _equal(cls, names: list[str]) -> list[str]:
        return _label_names(names)


class Silence(_StrictByName):
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
