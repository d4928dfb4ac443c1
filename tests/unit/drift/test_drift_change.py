"""The ADWIN the monitor runs detects exactly where river's own ADWIN does."""

from __future__ import annotations

import numpy as np
import pytest
from river import drift as river_drift

from anomalyd.drift.change import Adwin


@pytest.mark.parametrize("delta", [0.002, 0.1])
def test_adwin_fires_where_rivers_adwin_fires(delta: float) -> None:
    rng = np.random.default_rng(11)
    # Mean shifts every 700 values, and a long quiet stretch: detections and resets.
    values = np.concatenate([rng.normal((k % 2) * 1.5, 1.0, 700) for k in range(12)])
    ours, river = Adwin(delta), river_drift.ADWIN(delta=delta)  # type: ignore[no-untyped-call]
    fired = []
    for value in values.tolist():
        ours.update(value)
        river.update(value)
        assert ours.drift_detected == river.drift_detected
        fired.append(ours.drift_detected)
    assert sum(fired) >= 5
