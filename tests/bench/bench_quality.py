"""Detection quality at the page: NAB's scoring of what the daemon sends to people.

    make bench-quality                     # the default config (config/anomalyd.yaml)
    make bench-quality ARGS="--set model.threshold=0.6"    # a neighbouring setting

Each series of ../shared/data/nab-dev is replayed through the daemon's own engine
(`anomalyd.backtest`) with the default config, the same for every file. A page is a row
where an alert starts firing (any alert but DataDrift): it scores 1, every other row 0,
so NAB's threshold search has nothing to tune and the figures are those of the config
as shipped. Printed per category: NAB's three profiles, windows caught, median delay
from a window's start to its first page, and false pages (outside every window, after
NAB's probation) per stream-day. Beside them: the published detectors' figures on the
same 41 files, a plain River baseline (MinMaxScaler -> HalfSpaceTrees, NAB's usual
per-row reading with its best threshold), and seeded synthetic controls at one event a
minute for 14 days (false pages per stream-week; pages per level shift).

Then each detector behind the model's protocol, and each half of the default score
alone, on the same files with the same config otherwise: quality, µs per event of the
whole pipeline (engine and drift monitor, one core) and KB per stream in steady state
(`bench_memory`: a warm model and a full drift reference; skip with --no-detectors).
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import bench_memory
from river import anomaly, compose, preprocessing

from anomalyd.backtest import backtest
from anomalyd.config import AnomalydConfig, load_config
from anomalyd.domain import VALUE_FIELD, Event
from anomalyd.evaluate.corpus import Series, load_corpus
from anomalyd.evaluate.nab import PROFILES, nab_report, normalised, probation_rows, score_series
from anomalyd.evaluate.pages import page_rows, pages

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "data" / "nab-dev"
STANDARD, LOW_FP, LOW_FN = PROFILES.values()
#: Published results of NAB's leaders on these same 41 files (standard, low FP, low FN).
ANCHORS = {
    "CAD OSE": (75.9, 72.4, 79.2),
    "Numenta HTM": (75.5, 70.7, 79.0),
    "ARTime": (74.6, 66.5, 79.4),
}
DAY, WEEK = 86_400.0, 7 * 86_400.0


def events_of(series: Series) -> Iterator[Event]:
    for ts, value in zip(series.timestamps, series.values, strict=True):
        yield Event(series.name, ts, {VALUE_FIELD: value})


def series_pages(config: AnomalydConfig, series: Series) -> list[float]:
    return page_rows(backtest(config, events_of(series)).alerts, series.timestamps)


def category_line(name: str, scored: Sequence[tuple[Series, list[float]]]) -> str:
    raw = {p.name: 0.0 for p in PROFILES.values()}
    caught = windows = false_pages = 0
    delays: list[float] = []
    stream_days = 0.0
    for series, rows in scored:
        for profile in PROFILES.values():
            raw[profile.name] += score_series(series, rows, 0.5, profile).raw
        result = score_series(series, rows, 0.5, STANDARD)
        caught, windows = caught + result.tp, windows + result.tp + result.fn
        false_pages += result.fp
        step = (series.timestamps[-1] - series.timestamps[0]) / max(len(series.timestamps) - 1, 1)
        delays += [d * step / 60.0 for d in result.delays if d is not None]
        start = series.timestamps[probation_rows(len(series.timestamps))]
        stream_days += (series.timestamps[-1] - start) / DAY
    corpus = [series for series, _ in scored]
    figures = [
        f"{normalised(raw[p.name], corpus, p):7.1f}" if windows else "      -"
        for p in PROFILES.values()
    ]
    delay = f"{statistics.median(delays):8.0f}" if delays else "       -"
    return (
        f"{name:<24} {' '.join(figures)} {caught:>4}/{windows:<4} {delay}"
        f" {false_pages:>6} {false_pages / stream_days:>9.3f}"
    )


def nab_table(config: AnomalydConfig, corpus: Sequence[Series]) -> None:
    started = time.perf_counter()
    scored = [(series, series_pages(config, series)) for series in corpus]
    elapsed = time.perf_counter() - started
    rows = sum(len(s.values) for s in corpus)
    windows = sum(len(s.windows) for s in corpus)
    print(f"NAB-dev: {len(corpus)} series, {rows} rows, {windows} labelled windows; pages only")
    print(
        f"{'category':<24} {'std':>7} {'low FP':>7} {'low FN':>7} {'caught':>9}"
        f" {'delay min':>8} {'FP pages':>6} {'/stream-day':>9}"
    )
    by_category: dict[str, list[tuple[Series, list[float]]]] = defaultdict(list)
    for series, rows_ in scored:
        by_category[series.name.split("/")[0]].append((series, rows_))
    for category, part in sorted(by_category.items()):
        print(category_line(category, part))
    print(category_line("anomalyd (all)", scored))
    for name, (std, low_fp, low_fn) in ANCHORS.items():
        print(f"{name + ' (published)':<24} {std:7.1f} {low_fp:7.1f} {low_fn:7.1f}")
    river = nab_report([(series, river_hst(series)) for series in corpus])
    figures = " ".join(f"{river[p.name].normalised:7.1f}" for p in PROFILES.values())
    print(f"{'River HST, per row, best':<24} {figures}")
    print(f"anomalyd: {1e6 * elapsed / rows:.1f} µs per event (the whole engine, one core)")


#: Variants of the default config: each detector, and each half of the default score.
DETECTORS: dict[str, list[str]] = {
    "robust (default)": [],
    "robust, likelihood only": ["model.range_tolerance=100"],
    "robust, extremes only": ["model.threshold=1.0"],
    "gaussian": ["model.detector=gaussian"],
    "sad": ["model.detector=sad"],
    "hst": ["model.detector=hst"],
}
#: Streams of the steady-state memory measurement (HalfSpaceTrees: ~1.25 MB each).
_MEMORY_STREAMS = 200


def detectors_table(config_path: Path, overrides: list[str], corpus: Sequence[Series]) -> None:
    print("\ndetectors, each with the rest of the config as given; pages only")
    print(
        f"{'detector':<24} {'std':>7} {'low FP':>7} {'low FN':>7} {'caught':>9}"
        f" {'delay min':>8} {'FP pages':>6} {'/stream-day':>9} {'µs/event':>9} {'KB/stream':>9}"
    )
    rows = sum(len(s.values) for s in corpus)
    for name, extra in DETECTORS.items():
        config = load_config(config_path, overrides=[*overrides, *extra])
        started = time.perf_counter()
        scored = [(series, series_pages(config, series)) for series in corpus]
        micros = 1e6 * (time.perf_counter() - started) / rows
        memory = bench_memory.measure_apart(
            _MEMORY_STREAMS, 1_500, 1.0, config_path, [*overrides, *extra]
        )
        kb = int(memory["bytes_per_stream"]) / 1024  # type: ignore[call-overload]
        print(f"{category_line(name, scored)} {micros:9.1f} {kb:9.1f}")


def river_hst(series: Series) -> list[float]:
    model = compose.Pipeline(preprocessing.MinMaxScaler(), anomaly.HalfSpaceTrees(seed=42))
    scores = []
    for value in series.values:
        x = {"value": value}
        scores.append(model.score_one(x))
        model.learn_one(x)
    return scores


# -- synthetic controls: one event a minute for 14 days ----------------------------------

MINUTES = 14 * 24 * 60
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def student_t3(rng: random.Random) -> float:
    chi2 = sum(rng.gauss(0.0, 1.0) ** 2 for _ in range(3))
    return rng.gauss(0.0, 1.0) / math.sqrt(chi2 / 3.0)


CONTROLS: dict[str, Callable[[random.Random, int], float]] = {
    "stationary Gaussian": lambda rng, i: 100.0 + rng.gauss(0.0, 5.0),
    "Student-t(3)": lambda rng, i: 100.0 + 5.0 * student_t3(rng),
    "daily seasonal": lambda rng, i: (
        100.0 + 30.0 * math.sin(2 * math.pi * i / 1440) + rng.gauss(0.0, 5.0)
    ),
    "level shift +3 sd": lambda rng, i: (
        100.0 + rng.gauss(0.0, 5.0) + (15.0 if i >= 7 * 1440 else 0)
    ),
}


def control_pages(config: AnomalydConfig, kind: str, seed: int) -> list[float]:
    """The start times of the pages on one seeded control stream."""
    rng, make = random.Random(seed), CONTROLS[kind]
    stream = f"control.{seed}"
    events = (Event(stream, T0 + 60.0 * i, {VALUE_FIELD: make(rng, i)}) for i in range(MINUTES))
    return [a.starts_at for a in pages(backtest(config, events).alerts)]


def controls_table(config: AnomalydConfig, seeds: int) -> None:
    print(f"\nsynthetic controls, 1 event/min for 14 days from a cold start, {seeds} seeds")
    for kind in CONTROLS:
        starts = [control_pages(config, kind, seed) for seed in range(seeds)]
        if kind.startswith("level shift"):
            shift = T0 + 7 * DAY
            after = [sum(shift <= s < shift + DAY for s in run) for run in starts]
            before = [sum(s < shift for s in run) for run in starts]
            print(
                f"  {kind:<22} pages per shift (within a day) {statistics.mean(after):5.2f};"
                f" false pages per stream-week before it {statistics.mean(before):5.2f}"
            )
        else:
            false = [len(run) for run in starts]
            print(f"  {kind:<22} false pages per stream-week {statistics.mean(false) / 2:5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, default=REPO / "config" / "anomalyd.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per synthetic control")
    parser.add_argument("--no-detectors", action="store_true", help="skip the table of detectors")
    args = parser.parse_args()
    config = load_config(args.config, overrides=args.overrides)
    corpus = load_corpus(CORPUS)
    nab_table(config, corpus)
    controls_table(config, args.seeds)
    if not args.no_detectors:
        detectors_table(args.config, args.overrides, corpus)


if __name__ == "__main__":
    main()
