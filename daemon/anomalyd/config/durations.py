"""Durations as users write them in Prometheus and Alertmanager configs: `30s`, `5m`, `1h30m`."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(raw: Any) -> float:
    """Seconds from a number of seconds or a string like `90s`, `5m`, `1h30m`, `250ms`."""
    if isinstance(raw, bool):
        raise ValueError("a duration is a number of seconds or a string like '30s' or '5m'")
    if isinstance(raw, int | float):
        seconds = float(raw)
    elif isinstance(raw, str):
        seconds = _parse_text(raw.strip())
    else:
        raise ValueError("a duration is a number of seconds or a string like '30s' or '5m'")
    if not seconds >= 0 or seconds == float("inf"):
        raise ValueError("a duration must be a finite number of seconds >= 0")
    return seconds


def _parse_text(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration (examples: '30s', '5m', '1h30m', '250ms')")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


#: A field holding a duration in seconds, written as a number or `5m`-style text.
Duration = Annotated[float, BeforeValidator(parse_duration)]
