"""The online model of one series: features → detector → calibrated score.

Seeded from the rules: the caller teaches it only the points the rules call
normal, and its score does not count until it has learned `warmup` points.
"""

from __future__ import annotations

from dataclasses import dataclass

from anomalyd.config import ModelSection
from anomalyd.detect.calibrate import Calibrator
from anomalyd.detect.detectors import Detector, make_detector
from anomalyd.features import Features, OnlineFeatures


# Not frozen: a frozen dataclass costs five times as much to build, and one is built
# per event on the hot path. Treat it as immutable all the same.
@dataclass(slots=True)
class ModelScore:
    raw: float
    score: float  # calibrated, in [0, 1]; 0 while warming up
    warm: bool
    features: Features

    @property
    def expected(self) -> str:
        """The usual range of the value, for humans: the robust level ± 3 scales."""
        low = self.features.level_mean - 3.0 * self.features.level_std
        high = self.features.level_mean + 3.0 * self.features.level_std
        return f"{low:.6g} .. {high:.6g}"


class SeriesModel:
    __slots__ = ("_calibrator", "_detector", "_features", "_warmup")

    def __init__(self, section: ModelSection, seed: int) -> None:
        self._features = OnlineFeatures(section.window, section.seasonality)
        self._detector: Detector = make_detector(section.detector, seed=seed, window=section.window)
        self._calibrator = Calibrator(section.window)
        self._warmup = section.warmup

    @property
    def learned(self) -> int:
        return self._calibrator.count

    @property
    def warmup(self) -> int:
        """Points to learn before the model may alert (changed by a config reload)."""
        return self._warmup

    @warmup.setter
    def warmup(self, points: int) -> None:
        self._warmup = points

    @property
    def warmup_progress(self) -> float:
        return min(1.0, self.learned / self._warmup)

    def score(self, value: float, ts: float) -> ModelScore:
        features = self._features.transform(value, ts)
        raw = self._detector.score_one(features)
        calibrated = self._calibrator.score(raw)
        warm = self.learned >= self._warmup
        return ModelScore(raw, calibrated if warm else 0.0, warm, features)

    def learn(self, scored: ModelScore) -> None:
        self._features.learn(scored.features)
        self._detector.learn_one(scored.features)
        self._calibrator.learn(scored.raw)

    def remember(self, value: float) -> None:
        self._features.remember(value)
