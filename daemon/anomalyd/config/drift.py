"""Config of drift monitoring: windows, the reference, the decision rule and its alert.

The decision rule these thresholds feed is documented in `anomalyd.drift.rule`
and in the README section "Drift".
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from anomalyd.config.durations import Duration
from anomalyd.config.strict import Strict
from anomalyd.domain import Severity

#: previous: the last window judged normal. rolling: the last `rolling_windows` of them.
#: pinned: one window, chosen by `pinned_start` or else the stream's first full window.
ReferenceMode = Literal["previous", "rolling", "pinned"]


class DriftThresholds(Strict):
    """How large a difference from the reference must be to matter (effect sizes).

    They do not depend on the window's size, so a large window does not flag a
    trivial shift; `significance` keeps a small window from flagging noise.
    """

    mean_shift: float = Field(
        0.3, gt=0, allow_inf_nan=False, description="|trimmed mean - reference's| / reference std."
    )
    scale_ratio: float = Field(
        1.25,
        gt=1,
        allow_inf_nan=False,
        description="Spread ratio either way (mean abs. deviation).",
    )
    ks: float = Field(0.1, gt=0, le=1, description="Kolmogorov-Smirnov statistic (with psi).")
    psi: float = Field(0.2, gt=0, allow_inf_nan=False, description="PSI (with ks).")
    significance: float = Field(
        0.00001, gt=0, lt=0.5, description="The difference must be this unlikely as sampling noise."
    )
    suspect_significance: float = Field(
        0.02,
        gt=0,
        lt=0.5,
        description="... for one window to make the stream suspect (confirm_windows > 1).",
    )


class AdwinDetector(Strict):
    type: Literal["adwin"]
    delta: float = Field(0.002, gt=0, lt=1)


class PageHinkleyDetector(Strict):
    type: Literal["page_hinkley"]
    min_instances: int = Field(30, ge=1)
    delta: float = Field(0.005, ge=0, allow_inf_nan=False)
    threshold: float = Field(50.0, gt=0, allow_inf_nan=False)
    alpha: float = Field(0.9999, gt=0, le=1)


ChangeDetector = Annotated[AdwinDetector | PageHinkleyDetector, Field(discriminator="type")]


def _auto_or_duration(raw: object) -> object:
    return None if raw == "auto" else raw


#: `auto` (None): each stream's window is sized from its rate (`drift.sizing`).
WindowSize = Annotated[Duration | None, BeforeValidator(_auto_or_duration)]


class Seasonality(Strict):
    """A daily (or other) cycle, found online: judged with the cycle taken out."""

    detect: bool = Field(True, description="Learn one period, then test for a cycle.")
    period: Duration = Field(86400.0, ge=3600, le=4 * 604800, description="The cycle's length.")
    bins: int = Field(24, ge=4, le=1440, description="Phases of the profile per period.")
    min_strength: float = Field(
        0.25,
        gt=0,
        allow_inf_nan=False,
        description="The profile's std over phases, in within-phase std, to call it seasonal.",
    )


class DriftSection(Strict):
    enabled: bool = True
    # Off by default, measured: on NAB's 5-minute series the labelled anomalies are changes
    # that open drift episodes, and a model muted while its stream drifts scored 36.8
    # (standard, pages) against 69.7; the controls are the same either way.
    fallback_to_rules: bool = Field(
        False,
        description="While a stream drifts, its model does not page and re-learns the new regime.",
    )
    streams: list[str] = Field(["*"], min_length=1, description="Globs over stream names.")
    window: WindowSize = Field(
        None, gt=0, description="Tumbling window, aligned to event time; None: auto."
    )
    target_events: int = Field(100, ge=10, description="Auto windows: events per window.")
    min_window: Duration = Field(1200.0, gt=0, description="Auto windows: the smallest size.")
    max_window: Duration = Field(86400.0, gt=0, description="Auto windows: the largest size.")
    grace: Duration = Field(30.0, ge=0, description="How late an event may still join its window.")
    reference: ReferenceMode = "rolling"
    rolling_windows: int = Field(12, ge=1, le=64)
    pinned_start: datetime | None = Field(
        None, description="With reference: pinned, the start of the reference window."
    )
    min_count: int = Field(30, ge=10, description="Fewer events and a window is not judged.")
    sample_size: int = Field(512, ge=32, le=65536, description="Values kept per window (K).")
    psi_bins: int = Field(10, ge=2, le=100)
    thresholds: DriftThresholds = DriftThresholds()
    confirm_windows: int = Field(2, ge=1, le=100, description="Shifted in a row to open.")
    confirm_for: Duration = Field(
        5400.0, ge=0, description="... and at least this long (a short burst is not drift)."
    )
    stable_windows: int = Field(3, ge=1, le=100, description="Unshifted in a row to close.")
    seasonality: Seasonality = Seasonality()
    change_detector: ChangeDetector = AdwinDetector(type="adwin")
    alertname: str = Field("DataDrift", pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]{0,99}$")
    severity: Severity = Severity.WARNING
    max_streams: int = Field(10_000, ge=1, description="Streams beyond this are not tracked.")
    max_fields: int = Field(64, ge=1, le=1024, description="Fields per stream beyond this too.")
    seed: int = 0

    @model_validator(mode="after")
    def _pinned(self) -> DriftSection:
        if self.pinned_start is not None:
            if self.reference != "pinned":
                raise ValueError("pinned_start needs reference: pinned")
            if self.pinned_start.tzinfo is None:
                raise ValueError("pinned_start needs a timezone, e.g. 2026-11-22T00:00:00Z")
            if self.window is None:
                raise ValueError("pinned_start needs a window size (window: auto sizes per stream)")
            offset = self.pinned_start.timestamp() % self.window
            if min(offset, self.window - offset) > 1e-6:
                raise ValueError("pinned_start must be the start of a window (a multiple of it)")
        return self

    @model_validator(mode="after")
    def _bounds(self) -> DriftSection:
        if self.min_window > self.max_window:
            raise ValueError("min_window must not exceed max_window")
        return self

    @property
    def pinned_start_ts(self) -> float | None:
        return None if self.pinned_start is None else self.pinned_start.timestamp()
