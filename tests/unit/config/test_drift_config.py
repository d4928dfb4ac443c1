"""The `drift:` section: defaults, the example file, strictness, and cross checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from anomalyd.config import ConfigError, DriftSection, load_config, parse_config
from anomalyd.config.drift import AdwinDetector, PageHinkleyDetector, Seasonality

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "anomalyd.yaml"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("ANOMALYD_"):
            monkeypatch.delenv(name)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, environ={})
    return caught.value.problems


def test_defaults() -> None:
    drift = parse_config("{}", environ={}).drift
    assert drift == DriftSection()
    assert (drift.window, drift.grace, drift.reference) == (None, 30.0, "rolling")
    assert (drift.min_window, drift.max_window, drift.target_events) == (1200.0, 86400.0, 100)
    assert (drift.confirm_windows, drift.confirm_for, drift.stable_windows) == (2, 5400.0, 3)
    assert drift.seasonality == Seasonality(detect=True, period=86400.0)
    assert drift.change_detector == AdwinDetector(type="adwin")
    assert drift.pinned_start_ts is None


def test_the_example_file_spells_out_the_defaults() -> None:
    assert load_config(EXAMPLE, environ={}).drift == DriftSection()


def test_a_full_section() -> None:
    drift = parse_config(
        """
drift:
  window: 1h
  grace: 2m
  reference: pinned
  pinned_start: 2026-11-22T00:00:00Z
  thresholds: {mean_shift: 1, psi: 0.25}
  change_detector: {type: page_hinkley, threshold: 20}
  severity: critical
""",
        environ={},
    ).drift
    assert (drift.window, drift.grace) == (3600.0, 120.0)
    assert drift.pinned_start_ts == 1795305600.0
    assert drift.thresholds.mean_shift == 1.0
    assert drift.thresholds.ks == 0.1
    assert isinstance(drift.change_detector, PageHinkleyDetector)
    assert drift.change_detector.threshold == 20.0


def test_the_environment_overrides_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_config("drift: {window: 5m}", environ={}).drift.window == 300.0
    monkeypatch.setenv("ANOMALYD_DRIFT__WINDOW", "10m")
    assert parse_config("drift: {window: 5m}", environ={}).drift.window == 600.0


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("drift: {windw: 5m}", "drift.windw"),
        ("drift: {thresholds: {ks: 2}}", "drift.thresholds.ks"),
        ("drift: {thresholds: {scale_ratio: 0.9}}", "drift.thresholds.scale_ratio"),
        ("drift: {reference: last}", "drift.reference"),
        ("drift: {window: 0}", "drift.window"),
        ("drift: {change_detector: {type: kswin}}", "drift.change_detector"),
        ("drift: {pinned_start: 2026-11-22T00:00:00Z}", "drift"),  # needs reference: pinned
        ("drift: {reference: pinned, pinned_start: 2026-11-22T00:01:00Z}", "drift"),  # mid-window
        ("drift: {reference: pinned, pinned_start: '2026-11-22T00:00:00'}", "drift"),  # no zone
    ],
)
def test_mistakes_are_reported_with_their_path(text: str, path: str) -> None:
    found = problems(text)
    assert any(p.split(": ", 1)[0].startswith(path) for p in found), found
