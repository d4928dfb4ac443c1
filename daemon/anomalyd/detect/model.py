"""The online model of one series: features → detector → likelihood → score in [0, 1].

Seeded from the rules: the caller teaches its features and detector only the points
the rules call normal, and its score does not count until it has learned `warmup`
points. The score is the larger of two readings (each measured on NAB's corpus, see
the README's quality section): how unusual the detector's recent raw scores are for
this series (`likelihood`), and 1.0 for a value beyond the range the series has shown
so far (`extremes`) and at least `EXTREME_MIN_Z` robust deviations from the usual level
(without it, the records that any noisy series sets now and then would page).
"""

from __future__ import annotations

from dataclasses import dataclass

from anomalyd.config import ModelSection
from anomalyd.detect.detectors import Detector, make_detector
from anomalyd.detect.extremes import Extremes
from anomalyd.detect.likelihood import AnomalyLikelihood
from anomalyd.features import Features, OnlineFeatures
from anomalyd.plain import Plain, read_object, required

#: How far from the usual level (or the usual value at that time of day), in robust
#: standard deviations, a value beyond the range seen so far must be to score 1.
EXTREME_MIN_Z = 4.0


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
    __slots__ = ("_detector", "_extremes", "_features", "_likelihood", "_warmup")

    def __init__(self, section: ModelSection, seed: int) -> None:
        self._features = OnlineFeatures(section.window, section.seasonality)
        self._detector: Detector = make_detector(section.detector, seed=seed, window=section.window)
        self._likelihood = AnomalyLikelihood(section.likelihood.short, section.likelihood.long)
        self._extremes = Extremes(section.range_tolerance)
        self._warmup = section.warmup

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
        return self.learned >= self._warmup

    @property
    def warmup_progress(self) -> float:
        return min(1.0, self.learned / self._warmup)

    def state(self) -> dict[str, Plain]:
        """What it has learned, as plain values (`anomalyd.plain`). Its shape (detector,
        window, ...) and warm-up come from the config it is built with."""
        return {
            "features": self._features.state(),
            "detector": self._detector.state(),
            "likelihood": self._likelihood.state(),
            "extremes": self._extremes.state(),
        }

    def load_state(self, state: Plain, where: str) -> None:
        """Resume from `state()` of a model of the same shape; raises StateError."""
        data = read_object(state, where)
        self._features.load_state(required(data, "features", where), f"{where}.features")
        self._detector.load_state(required(data, "detector", where), f"{where}.detector")
        self._likelihood.load_state(required(data, "likelihood", where), f"{where}.likelihood")
        self._extremes.load_state(required(data, "extremes", where), f"{where}.extremes")

    def score(self, value: float, ts: float) -> ModelScore:
        features = self._features.transform(value, ts)
        raw = self._detector.score_one(features)
        likelihood = self._likelihood.score(raw)
        beyond = self._extremes.beyond(value) and (
            abs(features.level_z) >= EXTREME_MIN_Z or abs(features.season_z) >= EXTREME_MIN_Z
        )
        if not self.warm:
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
