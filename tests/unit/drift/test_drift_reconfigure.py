"""A config reload of drift monitoring (`DriftMonitor.reconfigure`, and the pipeline
turning it off and on): what each stream keeps, and the drift alerts resolved."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from drift_mechanics import T0, W, fixed_section

from anomalyd.config import parse_config
from anomalyd.domain import AlertStatus, Event
from anomalyd.drift import DriftMonitor, DriftUpdate, Status
from anomalyd.pipeline import Pipeline

URL = "http://anomalyd.test"
FIRING, RESOLVED = AlertStatus.FIRING, AlertStatus.RESOLVED


def feed(m: DriftMonitor, windows: int, shift_from: int, first: int = 0) -> list[DriftUpdate]:
    """Windows of 300 N(50, 2) values, shifted by 3 std from window `shift_from` on."""
    rng = np.random.default_rng(7)
    updates = []
    for w in range(first, first + windows):
        mean = 56.0 if w >= shift_from else 50.0
        for i, value in enumerate(rng.normal(mean, 2.0, 300).tolist()):
            ts = T0 + w * W + (i + 0.5) * W / 300
            m.observe(Event("s", ts, {"value": value}), now=ts)
        updates.append(m.close_due(T0 + (w + 1) * W, "s"))
    return updates


def drifting() -> tuple[DriftMonitor, Any]:
    """A monitor whose stream `s` drifts: its alert fired on window 11."""
    m = DriftMonitor(fixed_section(), URL, config_version="v1")
    updates = feed(m, 12, shift_from=10)
    [fired] = updates[11].alerts
    assert fired.status is FIRING
    assert m.is_drifting("s")
    return m, fired


def alerts_of(updates: Sequence[DriftUpdate]) -> list[Any]:
    return [alert for update in updates for alert in update.alerts]


def test_drift_alerts_carry_the_config_version() -> None:
    _, fired = drifting()
    assert fired.annotations["config_version"] == "v1"


def test_a_new_threshold_keeps_each_streams_windows_and_episode() -> None:
    m, fired = drifting()
    ended = m.reconfigure(fixed_section(min_count=50), now=T0 + 12 * W, config_version="v2")
    assert ended == []
    assert m.is_drifting("s")
    # The new level becomes the reference: the episode closes under the new version.
    [resolved] = alerts_of(feed(m, 4, shift_from=0, first=12))
    assert (resolved.status, resolved.fingerprint) == (RESOLVED, fired.fingerprint)
    assert resolved.annotations["config_version"] == "v2"


def test_a_new_window_size_starts_every_stream_afresh_and_resolves_its_alert() -> None:
    m, fired = drifting()
    [ended] = m.reconfigure(fixed_section(window=2 * W), now=T0 + 13 * W, config_version="v2")
    assert (ended.status, ended.fingerprint, ended.ends_at) == (
        RESOLVED,
        fired.fingerprint,
        T0 + 13 * W,
    )
    assert ended.annotations["config_version"] == "v2"
    assert m.streams() == []
    assert m.status("s") is None


def test_a_stream_no_longer_watched_is_dropped_and_its_alert_resolved() -> None:
    m, fired = drifting()
    [ended] = m.reconfigure(fixed_section(streams=["other.*"]), now=T0 + 13 * W)
    assert ended.fingerprint == fired.fingerprint
    assert m.streams() == []


def test_a_renamed_drift_alert_is_resolved_while_the_episode_goes_on() -> None:
    m, fired = drifting()
    [ended] = m.reconfigure(fixed_section(alertname="InputDrift"), now=T0 + 13 * W)
    assert ended.fingerprint == fired.fingerprint
    assert m.status("s") is Status.DRIFTING


def test_grace_changes_in_place() -> None:
    m, _ = drifting()
    assert m.reconfigure(fixed_section(grace=30), now=T0 + 13 * W) == []
    state = m.state("s")
    assert state is not None
    assert state.windows.grace == 30


def test_the_pipeline_turns_drift_off_and_on() -> None:
    config = parse_config(f"drift: {{window: {W}, grace: 0}}\n")
    pipeline = Pipeline(config)
    assert pipeline.drift is not None
    pipeline.drift, fired = drifting()  # a monitor with a firing alert

    off = config.model_copy(update={"drift": config.drift.model_copy(update={"enabled": False})})
    [ended] = pipeline.reconfigure(off, now=T0 + 13 * W)
    assert (ended.status, ended.fingerprint) == (RESOLVED, fired.fingerprint)
    assert ended.annotations["config_version"] == pipeline.version
    assert pipeline.drift is None

    assert pipeline.reconfigure(config, now=T0 + 14 * W) == []
    assert pipeline.drift is not None
    assert pipeline.drift.streams() == []
