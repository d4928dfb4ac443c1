"""Online features of one series: every feature of a point uses only earlier points.

Per point: the value, its change, its distance from the series' robust level
(z), the change's distance from the usual change, and its distance from the
usual value at that hour of the day. Memory is a fixed few hundred bytes.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass

from anomalyd.features.ewstats import RobustEW
from anomalyd.plain import (
    Plain,
    StateError,
    number,
    numbers,
    read_floats,
    read_object,
    read_optional_float,
    read_spread,
    required,
)

_HOURS = 24
#: A profile bucket speaks only after this many points at that hour.
_SEASON_MIN_COUNT = 8
#: Scale floor relative to the level, so a perfectly flat series still has a scale.
_RELATIVE_FLOOR = 1e-3
_ABSOLUTE_FLOOR = 1e-9


# Not frozen: a frozen dataclass costs five times as much to build, and one is built
# per event on the hot path. Treat it as immutable all the same.
@dataclass(slots=True)
class Features:
    value: float
    delta: float  # change since the previous point (0 for the first)
    level_z: float  # (value - robust EW mean) / robust EW std
    delta_z: float  # the same for the change
    season_z: float  # against the same hour of day; 0 until that hour has history
    hour: int
    level_mean: float
    level_std: float

    def as_dict(self) -> dict[str, float]:
        """For River estimators, which take a dict of numbers."""
        return {
            "value": self.value,
            "delta": self.delta,
            "level_z": self.level_z,
            "delta_z": self.delta_z,
            "season_z": self.season_z,
        }


class OnlineFeatures:
    """Feature state of one series. `transform` reads it; `learn` updates it."""

    __slots__ = ("_delta", "_level", "_previous", "_season", "_seasonality", "_window")

    def __init__(self, window: int, seasonality: bool = True) -> None:
        self._window = window
        self._level = RobustEW(window)
        self._delta = RobustEW(window)
        self._seasonality = seasonality
        # Per hour: count, mean, var; flat doubles (576 bytes) rather than 24 objects.
        self._season = array("d", bytes(8 * 3 * _HOURS)) if seasonality else None
        self._previous: float | None = None

    @property
    def count(self) -> int:
        return self._level.count

    def transform(self, value: float, ts: float) -> Features:
        delta = 0.0 if self._previous is None else value - self._previous
        floor = _floor(self._level.mean)
        hour = int(ts // 3600) % _HOURS
        return Features(
            value=value,
            delta=delta,
            level_z=self._level.z(value, floor) if self._level.count > 1 else 0.0,
            delta_z=self._delta.z(delta, floor) if self._delta.count > 1 else 0.0,
            season_z=self._season_z(value, hour, floor),
            hour=hour,
            level_mean=self._level.mean,
            level_std=self._level.std,
        )

    def remember(self, value: float) -> None:
        """Every point is the previous point of the next one, learned from or not."""
        self._previous = value

    def learn(self, features: Features) -> None:
        self._level.update(features.value)
        self._delta.update(features.delta)
        if self._season is not None:
            self._learn_season(features.value, features.hour)

    def state(self) -> dict[str, Plain]:
        """What it has learned, as plain values (`anomalyd.plain`); window and seasonality
        come from the config it is built with."""
        return {
            "level": self._level.state(),
            "delta": self._delta.state(),
            "season": None if self._season is None else numbers(self._season),
            "previous": None if self._previous is None else number(self._previous),
        }

    def load_state(self, state: Plain, where: str) -> None:
        data = read_object(state, where)
        self._level.load_state(required(data, "level", where), f"{where}.level")
        self._delta.load_state(required(data, "delta", where), f"{where}.delta")
        season = required(data, "season", where)
        if (season is None) != (self._season is None):
            raise StateError(f"{where}.season: present exactly when seasonality is on")
        if self._season is not None:
            values = read_floats(season, f"{where}.season", 3 * _HOURS)
            for i in range(2, len(values), 3):  # count, mean, var per hour
                read_spread(values[i], f"{where}.season[{i}]")
            self._season[:] = array("d", values)
        self._previous = read_optional_float(required(data, "previous", where), f"{where}.previous")

    def _season_z(self, value: float, hour: int, floor: float) -> float:
        season = self._season
        if season is None or season[3 * hour] < _SEASON_MIN_COUNT:
            return 0.0
        mean, var = season[3 * hour + 1], season[3 * hour + 2]
        return (value - mean) / max(math.sqrt(var), floor)

    def _learn_season(self, value: float, hour: int) -> None:
        season = self._season
        assert season is not None
        i = 3 * hour
        count = season[i] + 1.0
        # Each hour sees about 1/24 of the points: the same memory in days, not points.
        alpha = max(2.0 / (self._window / _HOURS + 1.0), 1.0 / count)
        mean = season[i + 1]
        if count == 1.0:
            season[i], season[i + 1] = count, value
            return
        diff = value - mean
        if alpha * diff * diff == math.inf:  # an overflowing point: see RobustEW.update
            return
        season[i] = count
        season[i + 1] = mean + alpha * diff
        season[i + 2] = (1.0 - alpha) * (season[i + 2] + alpha * diff * diff)


def _floor(level: float) -> float:
    return max(abs(level) * _RELATIVE_FLOOR, _ABSOLUTE_FLOOR)
