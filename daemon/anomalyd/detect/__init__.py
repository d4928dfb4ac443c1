"""Detection: rules and online models judge each point of a series."""

from anomalyd.detect.detectors import Detector, make_detector
from anomalyd.detect.extremes import Extremes
from anomalyd.detect.likelihood import AnomalyLikelihood
from anomalyd.detect.model import ModelScore, SeriesModel
from anomalyd.detect.rules import Check, ValueCheck, value_check

__all__ = [
    "AnomalyLikelihood",
    "Check",
    "Detector",
    "Extremes",
    "ModelScore",
    "SeriesModel",
    "ValueCheck",
    "make_detector",
    "value_check",
]
