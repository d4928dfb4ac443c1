"""Anomaly detectors for one series, behind one River-shaped protocol.

`score_one` returns a raw score (higher is more anomalous, any scale);
`learn_one` learns a point the caller judged normal. Calibration to [0,1] is
kept apart (`calibrate.py`), as River keeps thresholding apart from scoring.
Each detector is seeded where it is random and picklable.

River's `anomaly` package is imported when a detector that needs it is built:
it pulls in scipy.stats, a second of start-up the default detector does not use.
"""

from __future__ import annotations

from typing import Protocol

from anomalyd.config import DetectorKind
from anomalyd.features import Features


class Detector(Protocol):
    def score_one(self, x: Features) -> float: ...

    def learn_one(self, x: Features) -> None: ...


class RobustDetector:
    """How many robust standard deviations the point is from what this series usually
    does: from its usual value at that hour of the day once that hour has history,
    else from its robust level.

    Cheap (no state of its own: the features carry the statistics) and explainable.
    The change from the previous point is left out (measured on NAB and on seeded
    streams): a lone spike would count twice, once going up and once coming back, and
    heavy-tailed noise paged three times as often for no incident found.
    """

    __slots__ = ()

    def score_one(self, x: Features) -> float:
        # season_z is exactly 0.0 until the hour has history (or without seasonality).
        return abs(x.season_z) if x.season_z else abs(x.level_z)

    def learn_one(self, x: Features) -> None:
        """Its statistics live in the features, which learn on their own."""


class HalfSpaceTreesDetector:
    """River's HalfSpaceTrees over the features, min-max scaled (about 1.25 MB a series)."""

    def __init__(self, seed: int, window: int) -> None:
        from river import anomaly, compose, preprocessing

        self._model = compose.Pipeline(
            preprocessing.MinMaxScaler(),
            anomaly.HalfSpaceTrees(n_trees=10, height=8, window_size=min(window, 250), seed=seed),
        )

    def score_one(self, x: Features) -> float:
        return float(self._model.score_one(x.as_dict()))

    def learn_one(self, x: Features) -> None:
        self._model.learn_one(x.as_dict())


class GaussianDetector:
    """River's GaussianScorer on the value: the two-sided tail of a normal fitted to all
    history. (Its windowed form can produce a negative rolling variance and then fails.)"""

    def __init__(self) -> None:
        from river import anomaly

        self._model = anomaly.GaussianScorer(grace_period=30)

    def score_one(self, x: Features) -> float:
        return float(self._model.score_one(None, x.value))

    def learn_one(self, x: Features) -> None:
        self._model.learn_one(None, x.value)


class SADDetector:
    """River's StandardAbsoluteDeviation: |value - mean| / std over all history."""

    def __init__(self) -> None:
        from river import anomaly

        self._model = anomaly.StandardAbsoluteDeviation()

    def score_one(self, x: Features) -> float:
        return float(self._model.score_one(None, x.value))

    def learn_one(self, x: Features) -> None:
        self._model.learn_one(None, x.value)


def make_detector(kind: DetectorKind, *, seed: int, window: int) -> Detector:
    match kind:
        case "robust":
            return RobustDetector()
        case "hst":
            return HalfSpaceTreesDetector(seed, window)
        case "gaussian":
            return GaussianDetector()
        case "sad":
            return SADDetector()
