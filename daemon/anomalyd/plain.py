"""Plain values (JSON's: numbers, strings, booleans, lists, objects, null) out of state,
and checked on the way back in.

State written to Kafka is read back as data, never as code: each stateful class says
which plain fields it keeps (`state()`) and loads them back into an object built from
the current config (`load_state`), checking each with these readers. A value of the
wrong type or size raises `StateError`, saying where, and the caller refuses the
whole state.

JSON has no infinity or NaN: those floats are written as the strings "inf", "-inf"
and "nan".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeAlias

#: A plain value: what `orjson.dumps` writes and `orjson.loads` gives back.
Plain: TypeAlias = Any

_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


class StateError(ValueError):
    """State this version cannot read: the wrong type, size or value somewhere."""


def number(x: float) -> float | str:
    """A float as JSON can hold it (non-finite ones as strings)."""
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def numbers(xs: Any) -> list[float | str]:
    return [number(x) for x in xs]


def read_float(value: Plain, where: str) -> float:
    if isinstance(value, float | int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    raise StateError(f"{where}: a number")


def read_finite(value: Plain, where: str) -> float:
    x = read_float(value, where)
    if not math.isfinite(x):
        raise StateError(f"{where}: a finite number")
    return x


def read_spread(value: Plain, where: str) -> float:
    """A variance or a sum of squares: not negative (the square root of one is taken)."""
    x = read_float(value, where)
    if x < 0.0:
        raise StateError(f"{where}: not negative")
    return x


def read_optional_finite(value: Plain, where: str) -> float | None:
    return None if value is None else read_finite(value, where)


def read_optional_float(value: Plain, where: str) -> float | None:
    return None if value is None else read_float(value, where)


def read_int(value: Plain, where: str, low: int = 0, high: int = 2**62) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise StateError(f"{where}: an integer in [{low}, {high}]")
    return value


def read_bool(value: Plain, where: str) -> bool:
    if not isinstance(value, bool):
        raise StateError(f"{where}: true or false")
    return value


def read_str(value: Plain, where: str) -> str:
    if not isinstance(value, str):
        raise StateError(f"{where}: a string")
    return value


def read_floats(value: Plain, where: str, length: int | None = None) -> list[float]:
    """A list of numbers; of exactly `length` of them if given."""
    items = read_list(value, where, length)
    if all(type(x) is float for x in items):  # the usual case, without a name per item
        return items
    return [read_float(x, f"{where}[{i}]") for i, x in enumerate(items)]


def read_ints(
    value: Plain, where: str, length: int | None = None, low: int = 0, high: int = 2**62
) -> list[int]:
    """A list of integers in [low, high]; of exactly `length` of them if given."""
    items = read_list(value, where, length)
    if all(type(x) is int and low <= x <= high for x in items):
        return items
    return [read_int(x, f"{where}[{i}]", low, high) for i, x in enumerate(items)]


def read_list(value: Plain, where: str, length: int | None = None) -> list[Plain]:
    if not isinstance(value, list):
        raise StateError(f"{where}: a list")
    if length is not None and len(value) != length:
        raise StateError(f"{where}: {length} items, not {len(value)}")
    return value


def read_object(value: Plain, where: str) -> Mapping[str, Plain]:
    if not isinstance(value, dict):
        raise StateError(f"{where}: an object")
    return value


def read_labels(value: Plain, where: str) -> dict[str, str]:
    """An object of strings (labels, annotations)."""
    data = read_object(value, where)
    return {key: read_str(text, f"{where}.{key}") for key, text in data.items()}


def required(data: Mapping[str, Plain], key: str, where: str) -> Plain:
    """`data[key]`, or a StateError naming what is missing."""
    if key not in data:
        raise StateError(f"{where}: no {key!r}")
    return data[key]
