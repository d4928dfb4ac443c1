"""Detection: rules and online models judge each point of a series."""

from anomalyd.detect.calibrate import Calibrator
from anomalyd.detect.detectors import Detector, make_detector
from anomalyd.detect.model import ModelScore, SeriesModel
from anomalyd.detect.rules import Check, ValueCheck, value_check

__all__ = [
    "Calibrator",
    "Check",
    "Detector",
    "ModelScore",
    "SeriesModel",
    "ValueCheck",
    "make_detector",
    "value_check",
]
