"""NAB scores of three trivial detectors on the real corpus: does the scorer behave?

    .venv/bin/python tests/bench/nab_sanity.py [--corpus DIR] [--seeds N]

- null: every score 0, so it never fires: must normalise to 0 on every profile;
- random: seeded uniform scores in [0, 1) (NAB publishes about 11 on the standard profile for
  its full corpus; a subset differs somewhat), for seed 0 and averaged over --seeds seeds;
- perfect: fires once, at the first row of every window: must normalise to 100.

Prints a table of normalised scores (and optimised thresholds) per profile.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from anomalyd.evaluate import PROFILES, ProfileResult, Series, load_corpus, nab_report, window_rows

Detector = Callable[[Series], np.ndarray]


def null(series: Series) -> np.ndarray:
    return np.zeros(len(series.timestamps))


def random(seed: int) -> Detector:
    rng = np.random.default_rng(seed)
    return lambda series: rng.uniform(size=len(series.timestamps))


def perfect(series: Series) -> np.ndarray:
    scores = np.zeros(len(series.timestamps))
    for first, _ in window_rows(series.timestamps, series.windows):
        scores[first] = 1.0
    return scores


def report(corpus: list[Series], detector: Detector) -> dict[str, ProfileResult]:
    return nab_report([(series, detector(series)) for series in corpus])


def row(label: str, normalised: dict[str, float], thresholds: dict[str, str]) -> str:
    cells = [f"{normalised[p]:7.2f} @ {thresholds[p]:<6}" for p in PROFILES]
    return f"{label:<22}" + "".join(f"{cell:>24}" for cell in cells)


def main(root: Path, seeds: int) -> None:
    started = time.perf_counter()
    corpus = load_corpus(root)
    rows = sum(len(s.timestamps) for s in corpus)
    windows = sum(len(s.windows) for s in corpus)
    print(f"{len(corpus)} series, {rows} rows, {windows} windows from {root}")
    print(f"{'detector':<22}" + "".join(f"{p:>24}" for p in PROFILES))
    for label, detector in [("null", null), ("random (seed 0)", random(0)), ("perfect", perfect)]:
        result = report(corpus, detector)
        normalised = {p: r.normalised for p, r in result.items()}
        print(row(label, normalised, {p: f"{r.threshold:.4g}" for p, r in result.items()}))
    runs = [report(corpus, random(seed)) for seed in range(seeds)]
    for p in PROFILES:
        values = [run[p].normalised for run in runs]
        print(
            f"random, {seeds} seeds, {p}: mean {statistics.fmean(values):.2f}, "
            f"min {min(values):.2f}, max {max(values):.2f}"
        )
    print(f"({time.perf_counter() - started:.1f} s in all)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        default=Path(__file__).resolve().parents[3] / "shared" / "data" / "nab-dev",
    )
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    main(args.corpus, args.seeds)
