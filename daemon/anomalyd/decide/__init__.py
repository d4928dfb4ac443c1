"""Deciding: when a judged series becomes an alert, and when the alert ends."""

from anomalyd.alert import fingerprint
from anomalyd.decide.engine import Engine, Judgement
from anomalyd.decide.lifecycle import INACTIVE, AlertState, Phase, Timing, Transition, advance

__all__ = [
    "INACTIVE",
    "AlertState",
    "Engine",
    "Judgement",
    "Phase",
    "Timing",
    "Transition",
    "advance",
    "fingerprint",
]
