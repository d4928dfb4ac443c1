"""River change detectors over a field's values and its model scores.

They run across windows (a detector reset every window could not see a change
at a window's edge); each window records whether one fired while it was open.
They are reported, not part of the decision rule: ADWIN on raw values fires
on shifts far too small to page anyone about (see `make bench-drift`).
"""

from __future__ import annotations

from typing import Protocol

from river import drift as river_drift

from anomalyd.config.drift import AdwinDetector, ChangeDetector


class DriftDetector(Protocol):
    """River's drift detector contract, the part used here."""

    @property
    def drift_detected(self) -> bool: ...

    def update(self, x: float) -> None: ...


def make_drift_detector(config: ChangeDetector) -> DriftDetector:
    if isinstance(config, AdwinDetector):
        # river leaves ADWIN.__init__ unannotated; its arguments are checked by the config.
        detector: DriftDetector = river_drift.ADWIN(delta=config.delta)  # type: ignore[no-untyped-call]
        return detector
    detector = river_drift.PageHinkley(
        min_instances=config.min_instances,
        delta=config.delta,
        threshold=config.threshold,
        alpha=config.alpha,
    )
    return detector
