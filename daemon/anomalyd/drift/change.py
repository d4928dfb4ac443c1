"""River change detectors over a field's values and its model scores.

They run across windows (a detector reset every window could not see a change
at a window's edge); each window records whether one fired while it was open.
They are reported, not part of the decision rule: ADWIN on raw values fires
on shifts far too small to page anyone about (see `make bench-drift`).

ADWIN is river's Rust window driven as river's `ADWIN.update` drives it (a new
window after a detection), without its Python wrapper: two run per field on every
event, and the wrapper's instance dict and calls cost ~0.3 KB and a few tenths of
a µs each. River is pinned; the unit tests hold it to river's own ADWIN.
"""

from __future__ import annotations

from typing import Protocol

from river import drift as river_drift
from river._river_rust.drift import AdaptiveWindowing

from anomalyd.config.drift import AdwinDetector, ChangeDetector


class DriftDetector(Protocol):
    """River's drift detector contract, the part used here."""

    @property
    def drift_detected(self) -> bool: ...

    def update(self, x: float) -> None: ...


class Adwin:
    """River's ADWIN with its defaults (clock 32, 5 buckets a row, windows of at least
    5 values, no detection in the first 10)."""

    __slots__ = ("_delta", "_window", "drift_detected")

    def __init__(self, delta: float) -> None:
        self._delta = delta
        self._window = self._new_window()
        self.drift_detected = False

    def update(self, x: float) -> None:
        if self.drift_detected:  # river forgets the window a detection cut
            self._window = self._new_window()
        self.drift_detected = bool(self._window.update(x))

    def _new_window(self) -> AdaptiveWindowing:
        return AdaptiveWindowing(
            delta=self._delta, clock=32, max_buckets=5, min_window_length=5, grace_period=10
        )


def make_drift_detector(config: ChangeDetector) -> DriftDetector:
    if isinstance(config, AdwinDetector):
        return Adwin(config.delta)
    detector: DriftDetector = river_drift.PageHinkley(
        min_instances=config.min_instances,
        delta=config.delta,
        threshold=config.threshold,
        alpha=config.alpha,
    )
    return detector
