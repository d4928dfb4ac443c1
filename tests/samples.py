"""The sample dataset the documentation's examples use, and the generator that makes it.

`config/samples/checkout_latency.csv` is a week of checkout latency in NAB's CSV format
(`timestamp,value`, naive UTC, one row every 5 minutes): a daily cycle plus noise, one
spike and one lasting level shift. `config/samples/labels.json` holds the two labelled
windows around them in NAB's windows format, keyed by the CSV's file name (backtest
matches a key against the end of its input's path).

The files are generated, never edited by hand: `python tests/samples.py` rewrites them,
and `tests/unit/toplevel/test_samples.py` checks that the shipped files are exactly what
this module makes. Python's `random.Random(seed).gauss` is the same on every platform, so
a seed gives the same file everywhere.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "config" / "samples"
CSV_NAME = "checkout_latency.csv"
LABELS_NAME = "labels.json"

START = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday, in the past for any clock that runs
STEP = timedelta(minutes=5)
DAYS = 7
SEED = 17

BASE_MS = 220.0  # the level at the daily mean
DAILY_AMPLITUDE_MS = 60.0  # peak at 14:00 UTC, trough at 02:00
NOISE_MS = 8.0
SPIKE_AT = START + timedelta(days=3, hours=14, minutes=30)
SPIKE_MS = 900.0  # three rows at about four times the usual latency
SPIKE_ROWS = 3
SHIFT_AT = START + timedelta(days=5, hours=9)
SHIFT_MS = 120.0  # from here to the end: a release made checkout slower
WINDOW_HALF = timedelta(hours=3)  # each labelled window: 3 h either side of its start


@dataclass(frozen=True)
class Sample:
    """The dataset as text: the CSV and the labels file, byte for byte."""

    csv: str
    labels: str


def _value(moment: datetime, rng: random.Random) -> float:
    hours = (moment - START).total_seconds() / 3600.0
    daily = DAILY_AMPLITUDE_MS * math.sin(2.0 * math.pi * (hours - 8.0) / 24.0)
    value = BASE_MS + daily + rng.gauss(0.0, NOISE_MS)
    if SPIKE_AT <= moment < SPIKE_AT + SPIKE_ROWS * STEP:
        value = SPIKE_MS + rng.gauss(0.0, NOISE_MS)
    if moment >= SHIFT_AT:
        value += SHIFT_MS
    return round(value, 1)


def _nab_time(moment: datetime, fraction: bool = False) -> str:
    """NAB's naive UTC spelling; its label files add microseconds."""
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    return text + ".000000" if fraction else text


def generate() -> Sample:
    rng = random.Random(SEED)
    rows = ["timestamp,value"]
    for index in range(DAYS * 24 * 60 // 5):
        moment = START + index * STEP
        rows.append(f"{_nab_time(moment)},{_value(moment, rng)}")
    windows = [
        [_nab_time(at - WINDOW_HALF, True), _nab_time(at + WINDOW_HALF, True)]
        for at in (SPIKE_AT, SHIFT_AT)
    ]
    labels = json.dumps({CSV_NAME: windows}, indent=2) + "\n"
    return Sample(csv="\n".join(rows) + "\n", labels=labels)


def write(directory: Path = SAMPLES) -> None:
    sample = generate()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CSV_NAME).write_text(sample.csv, encoding="utf-8")
    (directory / LABELS_NAME).write_text(sample.labels, encoding="utf-8")


if __name__ == "__main__":
    write()
