"""Drift detection on seeded synthetic streams at realistic cadences, default config.

    make bench-drift

Streams send one event every second, minute or five minutes (jittered), through the
real `DriftMonitor` with the default drift config (windows sized per stream,
seasonality learned online), event by event, each window closed by the stream's
event time as the worker does. Three detectors see the same values:

- anomalyd: an alarm is a drift episode opening (one DataDrift alert);
- ADWIN: river.drift.ADWIN() with defaults on the raw values; an alarm is a
  detection;
- PSI > 0.2: PSI of each window (the size anomalyd chose for the stream) against
  the previous one (10 bins at the previous window's deciles, the same PSI code);
  an alarm is a window above 0.2.

Values are in units of the noise's standard deviation. Daily-seasonal streams add
1.5 * sin(2 pi t / 1 day). Changes happen at a random time 1.5 to 2.5 days in (the
first day is learned), and are watched for a day: detection rate within 6 h and 24 h,
median delay in hours and in events. Stationary controls (with and without noise
bursts: twice a day, 10 minutes at three times the spread) run for weeks and count
alarms per stream-month (30 days). Prints a table and one JSON line; seeded, so a
run is reproducible.
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
from anomalyd.domain import AlertStatus, Event
from anomalyd.drift import psi, psi_edges
from anomalyd.drift.monitor import DriftMonitor

T0 = 1_800_000_000.0  # a multiple of a day
DAY = 86400.0
MONTH = 30 * DAY
URL = "http://bench.invalid"
CADENCES = {"1/s": 1.0, "1/min": 60.0, "1/5min": 300.0}
DETECTORS = ("anomalyd", "ADWIN", "PSI>0.2")

#: values at event times `t` (seconds); the noise is drawn by the caller
Shape = Callable[[np.random.Generator, np.ndarray], np.ndarray]


def gauss(mean: float = 0.0, std: float = 1.0) -> Shape:
    return lambda rng, t: rng.normal(mean, std, t.size)


def student_t(df: float = 3.0) -> Shape:
    return lambda rng, t: rng.standard_t(df, t.size)


def skewed(shape: float) -> Shape:
    """Gamma(shape) standardised: mean 0, variance 1, skewness 2 / sqrt(shape)."""
    return lambda rng, t: (rng.gamma(shape, 1.0, t.size) - shape) / math.sqrt(shape)


def bimodal(mode: float = 0.95) -> Shape:
    """Modes at ±mode with Gaussian noise: mean 0, variance 1."""
    noise = math.sqrt(1.0 - mode * mode)
    return lambda rng, t: rng.choice((-mode, mode), t.size) + rng.normal(0.0, noise, t.size)


def daily(amplitude: float = 1.5, shift_h: float = 0.0, period: float = DAY) -> Shape:
    def values(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
        cycle = amplitude * np.sin(2 * math.pi * (t - shift_h * 3600.0) / period)
        return cycle + rng.normal(0.0, 1.0, t.size)

    return values


@dataclass(frozen=True)
class Scenario:
    name: str
    before: Shape
    after: Shape
    bursts: bool = False


SCENARIOS = [
    Scenario("mean +0.5 sd", gauss(), gauss(0.5)),
    Scenario("mean +1 sd", gauss(), gauss(1.0)),
    Scenario("mean +2 sd", gauss(), gauss(2.0)),
    Scenario("variance x2", gauss(), gauss(std=math.sqrt(2.0))),
    Scenario("shape -> skew 2", gauss(), skewed(1.0)),
    Scenario("shape -> bimodal", gauss(), bimodal()),
    Scenario("daily, mean +1 sd", daily(), lambda rng, t: daily()(rng, t) + 1.0),
    Scenario("daily amplitude x2", daily(), daily(amplitude=3.0)),
    Scenario("daily phase +6 h", daily(), daily(shift_h=6.0)),
    Scenario("daily period /2", daily(), daily(period=DAY / 2)),
]
CONTROLS = [
    Scenario("stationary Gaussian", gauss(), gauss()),
    Scenario("stationary Student-t(3)", student_t(), student_t()),
    Scenario("daily-seasonal", daily(), daily()),
    Scenario("Gaussian + noise bursts", gauss(), gauss(), bursts=True),
    Scenario("daily-seasonal + noise bursts", daily(), daily(), bursts=True),
]


@dataclass
class Alarms:
    """Per detector, the event times of its alarms."""

    at: dict[str, list[float]]
    events: np.ndarray  # the stream's event times


def stream(
    scenario: Scenario, cadence: float, length: float, change: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    n = int(length / cadence)
    t = T0 + (np.arange(n) + rng.uniform(0.0, 1.0, n)) * cadence
    before = t < change
    values = np.empty(n)
    values[before] = scenario.before(rng, t[before])
    values[~before] = scenario.after(rng, t[~before])
    if scenario.bursts:
        values = _bursts(values, t, rng)
    return t, values


def _bursts(values: np.ndarray, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Twice a day, 10 minutes in which the noise around the level has 3x the spread."""
    days = int((t[-1] - T0) / DAY) + 1
    starts = T0 + np.sort(rng.uniform(0.0, days * DAY, 2 * days))
    out = values.copy()
    for start in starts:
        inside = (t >= start) & (t < start + 600.0)
        out[inside] += rng.normal(0.0, math.sqrt(8.0), int(inside.sum()))
    return out


def run(name: str, t: np.ndarray, values: np.ndarray) -> Alarms:
    monitor = DriftMonitor(DriftSection(), URL)
    adwin = river_drift.ADWIN()  # type: ignore[no-untyped-call]
    at: dict[str, list[float]] = {d: [] for d in DETECTORS}
    for ts, value in zip(t.tolist(), values.tolist(), strict=True):
        monitor.observe(Event(name, ts, {"value": value}), now=ts)
        update = monitor.close_due(ts, name)
        if any(a.status is AlertStatus.FIRING for a in update.alerts):
            at["anomalyd"].append(ts)
        adwin.update(value)
        if adwin.drift_detected:
            at["ADWIN"].append(ts)
    state = monitor.state(name)
    size = state.windows.size if state is not None and state.windows is not None else DAY
    at["PSI>0.2"] = _psi_alarms(t, values, size)
    return Alarms(at, t)


def _psi_alarms(t: np.ndarray, values: np.ndarray, size: float) -> list[float]:
    window = np.floor(t / size)
    bounds = np.flatnonzero(np.diff(window)) + 1
    alarms, previous = [], None
    for chunk, ts in zip(np.split(values, bounds), np.split(t, bounds), strict=True):
        current = np.sort(chunk)
        comparable = previous is not None and current.size >= 10 and previous.size >= 10
        if comparable and psi(current, previous, psi_edges(previous, 10)) > 0.2:
            alarms.append(float(ts[-1]))
        previous = current
    return alarms


def detection(runs: list[tuple[Alarms, float]], cadence: float) -> dict[str, dict[str, Any]]:
    out = {}
    for d in DETECTORS:
        delays = []
        early = 0
        for alarms, change in runs:
            early += sum(1 for a in alarms.at[d] if a < change)
            after = [a for a in alarms.at[d] if a >= change]
            delays.append(after[0] - change if after else None)
        found = [x for x in delays if x is not None]
        median = statistics.median(found) if found else None
        out[d] = {
            "within_6h": sum(1 for x in found if x <= 6 * 3600) / len(delays),
            "within_24h": sum(1 for x in found if x <= DAY) / len(delays),
            "median_hours": None if median is None else median / 3600,
            "median_events": None if median is None else median / cadence,
            "false_before": early,
        }
    return out


def false_alarms(runs: list[Alarms], length: float) -> dict[str, dict[str, Any]]:
    months = len(runs) * length / MONTH
    return {
        d: {"alarms": sum(len(r.at[d]) for r in runs), "per_month": 0.0, "months": months}
        | {"per_month": sum(len(r.at[d]) for r in runs) / months}
        for d in DETECTORS
    }


#: When changes start (days): after the first day (learned) and a reference that has
#: taken in at least a day of windows (12 windows: 4 h at 1/s, 1 d at 1/min, 4 d at
#: 1/5min): the changes hit a stream that has been running, as they do in production.
SETTLE = {"1/s": 1.5, "1/min": 2.5, "1/5min": 3.0}
#: Streams per change scenario and control, and control length (days), per cadence:
#: fewer at 1/s, where a stream is 86,400 events a day.
PLAN = {"1/s": (4, 4, 14.0), "1/min": (20, 10, 30.0), "1/5min": (30, 20, 30.0)}


def main(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for label, cadence in CADENCES.items():
        if args.cadence and label not in args.cadence:
            continue
        runs, control_runs, control_days = PLAN[label]
        settle = SETTLE[label]
        runs, control_runs = runs * args.scale, control_runs * args.scale
        rng = np.random.default_rng(args.seed)
        per: dict[str, Any] = {"scenarios": {}, "controls": {}}
        for i, scenario in enumerate(SCENARIOS):
            done = []
            for r in range(runs):
                change = T0 + DAY * (settle + rng.uniform(0.0, 1.0))
                t, v = stream(scenario, cadence, change - T0 + DAY, change, rng)
                done.append((run(f"{i}/{r}", t, v), change))
            per["scenarios"][scenario.name] = detection(done, cadence)
        for i, control in enumerate(CONTROLS):
            length = control_days * DAY
            alarms = []
            for r in range(control_runs):
                t, v = stream(control, cadence, length, math.inf, rng)
                alarms.append(run(f"c{i}/{r}", t, v))
            per["controls"][control.name] = false_alarms(alarms, length)
        results[label] = per
    return results


def table(results: dict[str, Any]) -> str:
    lines = []
    for label, per in results.items():
        lines.append(f"== one event every {label[2:]}  (detected ≤6 h / ≤24 h, median delay)")
        lines.append(f"{'scenario':<26}" + "".join(f"{d:>34}" for d in DETECTORS))
        for name, cells in per["scenarios"].items():
            row = "".join(_cell(cells[d]) for d in DETECTORS)
            lines.append(f"{name:<26}{row}")
        lines.append(
            f"{'false alarms / stream-month':<26}" + "".join(f"{d:>34}" for d in DETECTORS)
        )
        for name, cells in per["controls"].items():
            months = cells["anomalyd"]["months"]
            row = "".join(
                f"{cells[d]['per_month']:>24.2f} ({cells[d]['alarms']:>6})" for d in DETECTORS
            )
            lines.append(f"{name[:19] + f' ({months:.1f})':<26}{row}")
        lines.append("")
    return "\n".join(lines)


def _cell(cell: dict[str, Any]) -> str:
    if cell["median_hours"] is None:
        delay = "-"
    else:
        delay = f"{cell['median_hours']:.1f} h/{cell['median_events']:.0f} ev"
    return f"{cell['within_6h']:>6.0%}{cell['within_24h']:>6.0%}{delay:>22}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cadence", action="append", choices=list(CADENCES), help="only these")
    parser.add_argument("--scale", type=int, default=1, help="streams per scenario x this")
    parser.add_argument("--seed", type=int, default=7)
    arguments = parser.parse_args()
    started = time.perf_counter()
    outcome = main(arguments)
    outcome["seconds"] = round(time.perf_counter() - started, 1)
    print(table({k: v for k, v in outcome.items() if k != "seconds"}))
    print(f"{outcome['seconds']} s")
    print(json.dumps(outcome, ensure_ascii=False))
