"""Drift detection on seeded synthetic streams with known change points.

    make bench-drift

Every stream sends `--per-window` events per 60 s window through the real
`DriftMonitor` (default config but the window size), window by window, and the
window is closed by its event-time watermark. Three detectors see the same values:

- anomalyd: an alarm is a drift episode opening (one DataDrift alert);
- ADWIN: river.drift.ADWIN() with defaults on the raw values; an alarm is a window
  in which it detects a change;
- PSI > 0.2: PSI of each window against the previous one (10 bins at the previous
  window's deciles, the same PSI code); an alarm is a window above 0.2.

Scenarios change at a window boundary after `--warmup` stationary windows and are
watched for `--horizon` windows: detection rate (within the horizon), rate within
2 windows, median delay in windows (1 = the first changed window). Stationary
controls count alarms per 1,000 windows. Prints a table and one JSON line;
seeded, so a run is reproducible.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from river import drift as river_drift

from anomalyd.config.drift import DriftSection
from anomalyd.domain import Event
from anomalyd.drift import DriftMonitor, psi, psi_edges

WINDOW_S = 60.0
T0 = 1_800_000_000.0  # a multiple of 60: windows start on the minute
URL = "http://bench.invalid"

#: values for the event times `t` (seconds) of one window
Generator = Callable[[np.random.Generator, np.ndarray], np.ndarray]


def gauss(mean: float = 0.0, std: float = 1.0) -> Generator:
    return lambda rng, t: rng.normal(mean, std, t.size)


def student_t(df: float = 3.0) -> Generator:
    return lambda rng, t: rng.standard_t(df, t.size)


def skewed(shape: float) -> Generator:
    """Gamma(shape) standardised: mean 0, variance 1, skewness 2 / sqrt(shape)."""
    return lambda rng, t: (rng.gamma(shape, 1.0, t.size) - shape) / math.sqrt(shape)


def bimodal(mode: float = 0.95) -> Generator:
    """Modes at ±mode with Gaussian noise: mean 0, variance 1."""
    noise = math.sqrt(1.0 - mode * mode)
    return lambda rng, t: rng.choice((-mode, mode), t.size) + rng.normal(0.0, noise, t.size)


def seasonal(amplitude: float = 1.5, period: float = WINDOW_S / 5) -> Generator:
    return lambda rng, t: amplitude * np.sin(2 * math.pi * t / period) + rng.normal(0, 1, t.size)


def daily(windows: int) -> Generator:
    """A cycle of `windows` windows, e.g. a day of 5-minute windows is 288."""
    return seasonal(period=windows * WINDOW_S)


@dataclass(frozen=True)
class Scenario:
    name: str
    before: Generator
    after: Generator


SCENARIOS = [
    Scenario("mean +0.5 sd", gauss(), gauss(0.5)),
    Scenario("mean +1 sd", gauss(), gauss(1.0)),
    Scenario("mean +2 sd", gauss(), gauss(2.0)),
    Scenario("mean +3 sd", gauss(), gauss(3.0)),
    Scenario("variance x2", gauss(), gauss(std=math.sqrt(2.0))),
    Scenario("shape -> skew 1", gauss(), skewed(4.0)),
    Scenario("shape -> skew 2", gauss(), skewed(1.0)),
    Scenario("shape -> bimodal", gauss(), bimodal()),
    Scenario("seasonal amplitude x2", seasonal(), seasonal(amplitude=3.0)),
    Scenario("seasonal period /2", seasonal(), seasonal(period=WINDOW_S / 10)),
]
CONTROLS = [
    Scenario("stationary Gaussian", gauss(), gauss()),
    Scenario("stationary Student-t(3)", student_t(), student_t()),
    Scenario("seasonal, 1/5-win period", seasonal(), seasonal()),
    # Cycles longer than the window: a daily cycle in 5-minute windows (288 of them), and
    # in hourly windows (24), where consecutive windows differ by up to 0.4 std.
    Scenario("seasonal, 288-win period", daily(288), daily(288)),
    Scenario("seasonal, 24-win period", daily(24), daily(24)),
]
DETECTORS = ("anomalyd", "ADWIN", "PSI>0.2")


def run_streams(
    scenario: Scenario, runs: int, windows: int, change_at: int, per_window: int, seed: int
) -> dict[str, list[list[bool]]]:
    """Per detector, per run, per window: did it alarm in that window?"""
    monitor = DriftMonitor(DriftSection(window=WINDOW_S, grace=0.0), URL)
    rng = np.random.default_rng(seed)
    offsets = (np.arange(per_window) + 0.5) * WINDOW_S / per_window
    adwins = [river_drift.ADWIN() for _ in range(runs)]
    previous: list[np.ndarray | None] = [None] * runs
    alarms: dict[str, list[list[bool]]] = {d: [[] for _ in range(runs)] for d in DETECTORS}
    for w in range(windows):
        t = T0 + w * WINDOW_S + offsets
        for r in range(runs):
            values = (scenario.after if w >= change_at else scenario.before)(rng, t)
            stream = f"{scenario.name}/{r}"
            for ts, value in zip(t.tolist(), values.tolist(), strict=True):
                monitor.observe(Event(stream, ts, {"value": value}), now=ts)
            update = monitor.close_due(T0 + (w + 1) * WINDOW_S, stream)
            alarms["anomalyd"][r].append(any(a.status == "firing" for a in update.alerts))
            alarms["ADWIN"][r].append(_adwin_alarm(adwins[r], values))
            current = np.sort(values)
            alarms["PSI>0.2"][r].append(_psi_alarm(current, previous[r]))
            previous[r] = current
    return alarms


def _adwin_alarm(adwin: Any, values: np.ndarray) -> bool:
    fired = False
    for value in values.tolist():
        adwin.update(value)
        fired = fired or adwin.drift_detected
    return fired


def _psi_alarm(current: np.ndarray, previous: np.ndarray | None) -> bool:
    return previous is not None and psi(current, previous, psi_edges(previous, 10)) > 0.2


def detection(alarms: list[list[bool]], change_at: int) -> dict[str, Any]:
    delays = []
    for run in alarms:
        after = run[change_at:]
        delays.append(after.index(True) + 1 if True in after else None)
    found = [d for d in delays if d is not None]
    return {
        "detected": len(found) / len(delays),
        "within_2": sum(1 for d in found if d <= 2) / len(delays),
        "median_delay": statistics.median(found) if found else None,
    }


def false_alarms(alarms: list[list[bool]]) -> dict[str, Any]:
    # The first window of a stream has nothing to be compared with: not counted.
    windows = sum(len(run) - 1 for run in alarms)
    count = sum(sum(run[1:]) for run in alarms)
    return {"windows": windows, "alarms": count, "per_1000": 1000 * count / windows}


def main(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"scenarios": {}, "controls": {}}
    windows = args.warmup + args.horizon
    for i, scenario in enumerate(SCENARIOS):
        alarms = run_streams(
            scenario, args.runs, windows, args.warmup, args.per_window, args.seed + i
        )
        results["scenarios"][scenario.name] = {
            d: detection(alarms[d], args.warmup) for d in DETECTORS
        }
    for i, control in enumerate(CONTROLS):
        runs = math.ceil(args.stationary_windows / (args.control_length - 1))
        alarms = run_streams(
            control, runs, args.control_length, args.control_length, args.per_window, 1000 + i
        )
        results["controls"][control.name] = {d: false_alarms(alarms[d]) for d in DETECTORS}
    return results


def table(results: dict[str, Any]) -> str:
    head = f"{'scenario':<34}" + "".join(f"{d:>28}" for d in DETECTORS)
    sub = f"{'':<34}" + f"{'detected  ≤2 win  median':>28}" * len(DETECTORS)
    lines = [head, sub]
    for name, per in results["scenarios"].items():
        cells = "".join(
            f"{per[d]['detected']:>12.0%}{per[d]['within_2']:>8.0%}{_delay(per[d]):>8}"
            for d in DETECTORS
        )
        lines.append(f"{name:<34}{cells}")
    lines.append("")
    lines.append(f"{'false alarms / 1,000 win':<34}" + "".join(f"{d:>28}" for d in DETECTORS))
    for name, per in results["controls"].items():
        cells = "".join(f"{per[d]['per_1000']:>20.2f} ({per[d]['alarms']:>4})" for d in DETECTORS)
        lines.append(f"{name + ' (' + str(per['anomalyd']['windows']) + ')':<34}{cells}")
    return "\n".join(lines)


def _delay(cell: dict[str, Any]) -> str:
    return "-" if cell["median_delay"] is None else f"{cell['median_delay']:g}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-window", type=int, default=500, help="events per window")
    parser.add_argument("--runs", type=int, default=60, help="streams per change scenario")
    parser.add_argument("--warmup", type=int, default=6, help="stationary windows before it")
    parser.add_argument("--horizon", type=int, default=6, help="windows watched after it")
    parser.add_argument("--stationary-windows", type=int, default=3000, help="per control")
    parser.add_argument("--control-length", type=int, default=101, help="windows per stream")
    parser.add_argument("--seed", type=int, default=7)
    arguments = parser.parse_args()
    started = time.perf_counter()
    outcome = main(arguments)
    outcome["seconds"] = round(time.perf_counter() - started, 1)
    outcome["per_window"] = arguments.per_window
    print(table(outcome))
    print(f"\n{outcome['seconds']} s")
    print(json.dumps(outcome, ensure_ascii=False))
