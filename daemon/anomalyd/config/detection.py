"""Config of the online model: which detector, how it warms up, and each stream's mode."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from anomalyd.config.durations import Duration
from anomalyd.config.strict import Strict
from anomalyd.domain import Severity

#: rules: rules only, no model. shadow: the model scores and is measured, never alerts.
#: hybrid: rules always fire; the model fires above its threshold once warm. model: model only.
Mode = Literal["rules", "shadow", "hybrid", "model"]
DetectorKind = Literal["robust", "hst", "gaussian", "sad"]


class ModeOverride(Strict):
    """A different mode or threshold for the streams matching `streams`."""

    streams: list[str] = Field(min_length=1, description="Globs over stream names.")
    mode: Mode | None = None
    threshold: float | None = Field(None, ge=0.0, le=1.0)


class FeedbackSection(Strict):
    """How labels from people (true or false positive) move each stream's model
    threshold; the rule is in `decide/feedback.py`."""

    enabled: bool = Field(True, description="Adapt thresholds; false: the configured ones.")
    min_threshold: float = Field(0.4, ge=0.0, le=1.0)
    max_threshold: float = Field(0.8, ge=0.0, le=1.0)
    step: float = Field(0.02, gt=0.0, le=0.5, description="One move of the threshold.")
    target_precision: float = Field(0.8, gt=0.0, lt=1.0)
    min_labels: int = Field(5, ge=1, le=10_000, description="Labels before the first raise.")
    window: int = Field(
        50, ge=1, le=10_000, description="Labels remembered per stream and detector."
    )
    lower_after: int = Field(
        10, ge=1, le=10_000, description="True positives in a row before a lowering."
    )

    @model_validator(mode="after")
    def _consistent(self) -> FeedbackSection:
        if self.min_threshold > self.max_threshold:
            raise ValueError("min_threshold must be <= max_threshold")
        if self.min_labels > self.window:
            raise ValueError("min_labels must be <= window (the labels remembered)")
        return self


class LikelihoodSection(Strict):
    """How the detector's raw scores become a score in [0, 1] (`detect/likelihood.py`)."""

    short: int = Field(
        10, ge=1, le=1_000, description="Recent raw scores averaged: what one point weighs."
    )
    long: int = Field(
        2000, ge=10, le=1_000_000, description="Effective memory of the long-run distribution."
    )


class ModelSection(Strict):
    mode: Mode = "hybrid"
    detector: DetectorKind = "robust"
    threshold: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Score at which the model fires; 0.5: recent scores this high once in 10^5.",
    )
    warmup: int = Field(
        150, ge=10, le=1_000_000, description="Points learned before the model may alert."
    )
    window: int = Field(
        2000,
        ge=10,
        le=1_000_000,
        description="Effective memory of the model's statistics, in points.",
    )
    seasonality: bool = Field(True, description="Learn a time-of-day profile per stream.")
    likelihood: LikelihoodSection = LikelihoodSection()
    range_tolerance: float = Field(
        0.05,
        ge=0.0,
        le=100.0,
        description="A value beyond the range seen so far by this share of its span scores 1.",
    )
    seed: int = 42
    alertname: str = Field("AnomalyDetected", pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]{0,99}$")
    severity: Severity = Severity.WARNING
    for_: Duration = Field(0.0, alias="for")
    keep_firing_for: Duration = 0.0
    overrides: list[ModeOverride] = []
    feedback: FeedbackSection = FeedbackSection()


class StateSection(Strict):
    """Where each stream's detection state is kept between restarts and rebalances."""

    snapshot_interval: Duration = Field(
        30.0, gt=0, description="How often changed streams are written to the state topic."
    )
