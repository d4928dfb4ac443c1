"""The online model of one series: features → detector → likelihood → score in [0, 1].

Seeded from the rules: the caller teaches its features and detector only the points
the threshold rules call normal, and its score does not count until it has learned
`warmup` points and, with seasonality, seen a day of the stream: the first trough of a
daily cycle is news only to a model that has never seen a whole day (measured: 0.3
false pages per stream in the first day of a daily-seasonal stream without this, and
no change on NAB with it).

The score is the larger of two readings (each measured on NAB's corpus, see the
README's quality section): how unusual the detector's recent raw scores are for
this series (`likelihood`), and 1.0 for a value beyond the range the series has shown
so far (`extremes`) and at least `EXTREME_MIN_Z` robust deviations from the usual level
(without it, the records that any noisy series sets now and then would page).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from anomalyd.config import ModelSection
from anomalyd.detect.detectors import Detector, make_detector
from anomalyd.detect.extremes import Extremes
from anomalyd.detect.likelihood import AnomalyLikelihood
from anomalyd.features import Features, OnlineFeatures
from anomalyd.plain import (
    Plain,
    number,
    read_float,
    read_object,
    read_optional_finite,
    required,
)

#: How far from the usual level (or the usual value at that time of day), in robust
#: standard deviations, a value beyond the range seen so far must be to score 1.
EXTREME_MIN_Z = 4.0
DAY = 86_400.0


# Not frozen: a frozen dataclass costs five times as much to build, and one is built
# per event on the hot path. Treat it as immutable all the same.
@dataclass(slots=True)
class ModelScore:
    raw: float
    score: float  # in [0, 1]; 0 while warming up
    warm: bool
    features: Features
    beyond_range: bool = False  # the value left the range the series has shown

    @property
    def expected(self) -> str:
        """The usual range of the value, for humans: the robust level ± 3 scales."""
        low = self.features.level_mean - 3.0 * self.features.level_std
        high = self.features.level_mean + 3.0 * self.features.level_std
        return f"{low:.6g} .. {high:.6g}"


class SeriesModel:
    __slots__ = (
        "_cycle",
        "_detector",
        "_extremes",
        "_features",
        "_latest",
        "_likelihood",
        "_since",
        "_warmup",
    )

    def __init__(self, section: ModelSection, seed: int) -> None:
        self._features = OnlineFeatures(section.window, section.seasonality)
        self._detector: Detector = make_detector(section.detector, seed=seed, window=section.window)
        self._likelihood = AnomalyLikelihood(section.likelihood.short, section.likelihood.long)
        self._extremes = Extremes(section.range_tolerance)
        self._warmup = section.warmup
        #: Event time the model must have seen before it may page.
        self._cycle = DAY if section.seasonality else 0.0
        self._since: float | None = None  # the first event's time
        self._latest = -math.inf  # the latest event's time

    @property
    def learned(self) -> int:
        return self._features.count

    @property
    def warmup(self) -> int:
        """Points to learn before the model may alert (changed by a config reload)."""
        return self._warmup

    @warmup.setter
    def warmup(self, points: int) -> None:
        self._warmup = points

    @property
    def warm(self) -> bool:
        return self.warm_at(self._latest)

    def warm_at(self, ts: float) -> bool:
        """Whether the model may page a point at event time `ts`."""
        return self.learned >= self._warmup and self._seen_for(ts) >= self._cycle

    @property
    def warmup_progress(self) -> float:
        points = self.learned / self._warmup
        seen = self._seen_for(self._latest) / self._cycle if self._cycle else 1.0
        return min(1.0, points, seen)

    def _seen_for(self, ts: float) -> float:
        """Event time from the stream's first event to `ts`."""
        return 0.0 if self._since is None else ts - self._since

    def state(self) -> dict[str, Plain]:
        """What it has learned, as plain values (`anomalyd.plain`). Its shape (detector,
        window, ...) and warm-up come from the config it is built with."""
        return {
            "features": self._features.state(),
            "detector": self._detector.state(),
            "likelihood": self._likelihood.state(),
            "extremes": self._extremes.state(),
            "since": None if self._since is None else number(self._since),
            "latest": number(self._latest),
        }

    def load_state(self, state: Plain, where: str) -> None:
        """Resume from `state()` of a model of the same shape; raises StateError."""
        data = read_object(state, where)
        self._features.load_state(required(data, "features", where), f"{where}.features")
        self._detector.load_state(required(data, "detector", where), f"{where}.detector")
        self._likelihood.load_state(required(data, "likelihood", where), f"{where}.likelihood")
        self._extremes.load_state(required(data, "extremes", where), f"{where}.extremes")
        self._since = read_optional_finite(required(data, "since", where), f"{where}.since")
        self._latest = read_float(required(data, "latest", where), f"{where}.latest")

    def score(self, value: float, ts: float) -> ModelScore:
        if self._since is None:
            self._since = ts
        self._latest = max(self._latest, ts)
        features = self._features.transform(value, ts)
        raw = self._detector.score_one(features)
        likelihood = self._likelihood.score(raw)
        beyond = self._extremes.beyond(value) and _far(features)
        if not self.warm_at(ts):
            return ModelScore(raw, 0.0, False, features)
        return ModelScore(raw, 1.0 if beyond else likelihood, True, features, beyond)

    def learn(self, scored: ModelScore) -> None:
        self._features.learn(scored.features)
        self._detector.learn_one(scored.features)

    def remember(self, value: float) -> None:
        """Every point, learned from or not: the previous point of the next one, and a
        part of the range the series has shown."""
        self._features.remember(value)
        self._extremes.learn(value)


def _far(x: Features) -> bool:
    """At least EXTREME_MIN_Z robust deviations from the usual level, or from the usual
    value at that hour of the day."""
    return abs(x.level_z) >= EXTREME_MIN_Z or abs(x.season_z) >= EXTREME_MIN_Z
