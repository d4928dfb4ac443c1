"""The drift settings the mechanics tests share: fixed one-minute windows, judged from
the first, with the rule's former thresholds. What those tests pin down is the
mechanics, not the defaults (`make bench-drift` measures those)."""

from __future__ import annotations

from typing import Any

from anomalyd.config.drift import DriftSection

T0 = 1_800_000_000.0  # a multiple of 60
W = 60.0

FIXED = {
    "confirm_for": 0,
    "seasonality": {"detect": False},
    "min_count": 100,
    "thresholds": {"mean_shift": 0.5, "significance": 0.001, "suspect_significance": 0.001},
}


def fixed_section(**settings: Any) -> DriftSection:
    """FIXED with windows of W, no grace, and `settings` over them."""
    return DriftSection.model_validate({**FIXED, "window": W, "grace": 0, **settings})
