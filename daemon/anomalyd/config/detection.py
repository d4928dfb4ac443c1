"""Config of the online model: which detector, how it warms up, and each stream's mode."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from anomalyd.config.durations import Duration
from anomalyd.domain import Severity

#: rules: rules only, no model. shadow: the model scores and is measured, never alerts.
#: hybrid: rules always fire; the model fires above its threshold once warm. model: model only.
Mode = Literal["rules", "shadow", "hybrid", "model"]
DetectorKind = Literal["robust", "hst", "gaussian", "sad"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModeOverride(_Strict):
    """A different mode or threshold for the streams matching `streams`."""

    streams: list[str] = Field(min_length=1, description="Globs over stream names.")
    mode: Mode | None = None
    threshold: float | None = Field(None, ge=0.0, le=1.0)


class ModelSection(_Strict):
    mode: Mode = "hybrid"
    detector: DetectorKind = "robust"
    threshold: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Calibrated score at which the model fires; 0.5 = one normal point in 10^6.",
    )
    warmup: int = Field(
        150, ge=10, le=1_000_000, description="Points learned before the model may alert."
    )
    window: int = Field(
        500,
        ge=10,
        le=1_000_000,
        description="Effective memory of the model's statistics, in points.",
    )
    seasonality: bool = Field(True, description="Learn a time-of-day profile per stream.")
    seed: int = 42
    alertname: str = Field("AnomalyDetected", pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]{0,99}$")
    severity: Severity = Severity.WARNING
    for_: Duration = Field(0.0, alias="for")
    keep_firing_for: Duration = 0.0
    overrides: list[ModeOverride] = []


class StateSection(_Strict):
    """Where each stream's detection state is kept between restarts and rebalances."""

    snapshot_interval: Duration = Field(
        30.0, gt=0, description="How often changed streams are written to the state topic."
    )
