"""The worker's detection adopts a reloaded config all or nothing: if its pipeline fails
part way, it goes back to the config it ran and says so (ReconfigureFailed)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from anomalyd.clock import ManualClock
from anomalyd.config import AnomalydConfig, parse_config
from anomalyd.domain import Event
from anomalyd.metrics import Metrics
from anomalyd.pipeline import Outcome, Pipeline
from anomalyd.worker.detection.runtime import ReconfigureFailed, Runtime

T0 = 1_700_000_000.0


def config(threshold: float) -> AnomalydConfig:
    raw: dict[str, Any] = {
        "rules": [{"name": "High", "type": "above", "threshold": threshold}],
        "receivers": [{"type": "log", "name": "log"}],
    }
    return parse_config(yaml.safe_dump(raw), environ={})


async def test_a_failed_reconfigure_restores_the_running_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old, new = config(500), config(300)
    runtime = Runtime(old, ManualClock(T0), Metrics())

    async def sent(key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        return None

    runtime.attach(send_alert=sent, send_drift=sent)
    calls: list[AnomalydConfig] = []
    real = Pipeline.reconfigure

    def flaky(self: Pipeline, config: AnomalydConfig, now: float) -> list[Any]:
        calls.append(config)
        if len(calls) == 1:
            real(self, config, now)  # part of it applied, then it breaks
            raise RuntimeError("boom")
        return real(self, config, now)

    monkeypatch.setattr(Pipeline, "reconfigure", flaky)
    with pytest.raises(ReconfigureFailed, match="RuntimeError: boom"):
        await runtime.reconfigure(new)
    assert calls == [new, old], "the running config was put back"
    assert runtime.config is old
    # The old threshold judges: 400 is not over 500.
    outcome = Outcome()
    runtime.score(Event(stream="s", ts=T0, values={"value": 400.0}), 0, None, T0, outcome)
    assert outcome.alerts == []
