"""Detection quality on labelled public data: NAB's scoring on ../shared/data/nab-dev.

    make bench-quality            # the default config in rules, model and hybrid modes
    make bench-quality ARGS=--detectors    # also every detector kind in model mode

Each series is replayed through the daemon's own engine (`anomalyd.backtest`)
with the default config (config/anomalyd.yaml), not tuned per file, and scored
two ways, with one threshold per profile chosen over the whole corpus as NAB does:
- per-row verdict scores (NAB's usual reading: every row at or above the
  threshold is a detection, so a sustained condition counts on every row);
- "pages": a row scores only where an alert starts firing, which is what the
  daemon sends to people (a sustained condition pages once).
Beside it, in the same run, a plain River baseline:
MinMaxScaler → HalfSpaceTrees with defaults, scoring each point before learning it.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from river import anomaly, compose, preprocessing

from anomalyd.backtest import backtest
from anomalyd.config import AnomalydConfig, load_config
from anomalyd.domain import VALUE_FIELD, Event
from anomalyd.evaluate.corpus import Series, load_corpus
from anomalyd.evaluate.nab import nab_report

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "data" / "nab-dev"
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")

Scorer = Callable[[Series], list[float]]


def daemon_scorer(config: AnomalydConfig) -> Scorer:
    def score(series: Series) -> list[float]:
        events = (
            Event(series.name, ts, {VALUE_FIELD: value})
            for ts, value in zip(series.timestamps, series.values, strict=True)
        )
        return [verdict.score for verdict in backtest(config, events).verdicts]

    return score


def pages_scorer(config: AnomalydConfig) -> Scorer:
    """What the daemon pages: a row scores only where an alert starts firing (1 for a rule,
    the model's score for the model), so a sustained condition counts once, as it pages once."""

    def score(series: Series) -> list[float]:
        events = [
            Event(series.name, ts, {VALUE_FIELD: value})
            for ts, value in zip(series.timestamps, series.values, strict=True)
        ]
        result = backtest(config, iter(events))
        row_of = {ts: i for i, ts in enumerate(series.timestamps)}
        scores = [0.0] * len(series.values)
        for alert in result.firing():
            row = row_of.get(alert.starts_at)
            if row is None or alert.labels.get("alertname") in _NOT_VALUE_ALERTS:
                continue
            detector_score = float(alert.annotations.get("score", 1.0))
            scores[row] = max(scores[row], detector_score)
        return scores

    return score


#: Alerts about time or windows, not about a row's value.
_NOT_VALUE_ALERTS = {"DataDrift"}


def river_hst(series: Series) -> list[float]:
    model = compose.Pipeline(preprocessing.MinMaxScaler(), anomaly.HalfSpaceTrees(seed=42))
    scores = []
    for value in series.values:
        x = {"value": value}
        scores.append(model.score_one(x))
        model.learn_one(x)
    return scores


def measure(name: str, scorer: Scorer, corpus: Sequence[Series]) -> dict[str, object]:
    started = time.perf_counter()
    scored = [(series, scorer(series)) for series in corpus]
    elapsed = time.perf_counter() - started
    rows = sum(len(series.values) for series in corpus)
    report = nab_report(scored)
    return {
        "detector": name,
        **{p: round(report[p].normalised, 1) for p in PROFILES},
        **{f"{p}_threshold": round(report[p].threshold, 4) for p in PROFILES},
        "us_per_event": round(1e6 * elapsed / rows, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, default=REPO / "config" / "anomalyd.yaml")
    parser.add_argument(
        "--detectors", action="store_true", help="also each detector kind, model mode"
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    corpus = load_corpus(CORPUS)

    def config(*overrides: str) -> AnomalydConfig:
        return load_config(args.config, overrides=[*args.overrides, *overrides])

    runs: list[tuple[str, Scorer]] = [
        (f"anomalyd {mode}", daemon_scorer(config(f"model.mode={mode}")))
        for mode in ("rules", "model", "hybrid")
    ]
    runs += [
        (f"anomalyd {mode}, pages", pages_scorer(config(f"model.mode={mode}")))
        for mode in ("rules", "model", "hybrid")
    ]
    if args.detectors:
        runs += [
            (f"model: {kind}", daemon_scorer(config("model.mode=model", f"model.detector={kind}")))
            for kind in ("robust", "gaussian", "sad", "hst")
        ]
    runs.append(("River MinMax+HST (baseline)", river_hst))
    results = [measure(name, scorer, corpus) for name, scorer in runs]
    rows = sum(len(s.values) for s in corpus)
    windows = sum(len(s.windows) for s in corpus)
    print(f"NAB-dev: {len(corpus)} series, {rows} rows, {windows} labelled windows")
    print(f"{'detector':<30} {'standard':>9} {'low FP':>9} {'low FN':>9} {'µs/event':>9}")
    for r in results:
        print(
            f"{r['detector']:<30} {r['standard']:>9} {r['reward_low_FP_rate']:>9}"
            f" {r['reward_low_FN_rate']:>9} {r['us_per_event']:>9}"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
