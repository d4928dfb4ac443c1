"""`anomalyd backtest INPUT`: arguments and the run, kept apart from the main CLI."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from anomalyd.backtest.plot import ChartChoiceError, choose_stream, panels, plot
from anomalyd.backtest.reader import count_rows, parse_csv_time, read_events
from anomalyd.backtest.report import summary_lines, write_outputs
from anomalyd.backtest.run import BacktestResult, backtest, with_progress
from anomalyd.config import AnomalydConfig
from anomalyd.evaluate.corpus import Profile, load_profiles
from anomalyd.ingest import Limits

HELP = "Replay a CSV or JSONL file through the detection code; write scores and alerts."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="CSV (timestamp,value[,stream]) or JSONL events")
    parser.add_argument("--out", type=Path, default=Path("backtest-out"), help="output directory")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set model.threshold=0.6 (repeatable)",
    )
    parser.add_argument("--plot", type=Path, help="write a chart (.png, .svg or .pdf)")
    parser.add_argument(
        "--stream", help="which stream to plot and score against --labels (default: the first)"
    )
    parser.add_argument(
        "--field",
        dest="fields",
        action="append",
        default=[],
        metavar="FIELD",
        help="which field of the stream to plot (repeatable; default: each, one panel apiece)",
    )
    parser.add_argument(
        "--labels", type=Path, help="NAB-style label windows JSON: adds quality figures"
    )


def run(config: AnomalydConfig, args: argparse.Namespace) -> int:
    if not args.input.is_file():
        print(f"backtest: no such file: {args.input}", file=sys.stderr)
        return 1
    limits = Limits(
        config.ingest.max_event_bytes, config.ingest.max_labels, config.ingest.max_fields
    )
    # Counting rows reads the file once more: only worth it when a progress bar can show.
    total = count_rows(args.input) if sys.stderr.isatty() else 0
    rows = with_progress(read_events(args.input, limits), total)
    started = time.perf_counter()
    result = backtest(config, rows)
    elapsed = time.perf_counter() - started
    scores_path, alerts_path = write_outputs(result, args.out)
    print("\n".join(summary_lines(result, elapsed)))
    print(f"wrote {scores_path} and {alerts_path}")
    if not result.verdicts:
        return 0
    try:
        stream = choose_stream(result, args.stream)
        panels(result, stream, args.fields)  # checks the fields before anything is drawn
    except ChartChoiceError as error:
        print(f"backtest: {error}", file=sys.stderr)
        return 2
    windows = _windows_for(args.labels, args.input) if args.labels else []
    if args.labels:
        _print_quality(result, windows, args.labels, stream)
    if args.plot:
        plot(result, args.plot, config.model.threshold, windows, stream, args.fields)
        print(f"wrote {args.plot} ({stream})")
    return 0


def _windows_for(labels_path: Path, input_path: Path) -> list[tuple[float, float]]:
    """The windows whose key (`<category>/<name>.csv`) the input path ends with."""
    labels: dict[str, list[list[str]]] = json.loads(labels_path.read_text())
    for key, windows in labels.items():
        if input_path.as_posix().endswith(key):
            return [(parse_csv_time(start), parse_csv_time(end)) for start, end in windows]
    print(f"backtest: {labels_path} has no windows for {input_path}", file=sys.stderr)
    return []


def _print_quality(
    result: BacktestResult, windows: list[tuple[float, float]], labels_path: Path, stream: str
) -> None:
    from anomalyd.evaluate.corpus import Series
    from anomalyd.evaluate.nab import normalised, probation_rows, score_series
    from anomalyd.evaluate.pages import page_rows
    from anomalyd.evaluate.windows import detection_metrics

    rows = [v for v in result.verdicts if v.stream == stream]
    timestamps = [v.ts for v in rows]
    # What people receive: a row counts where an alert starts firing (a page).
    paged = page_rows((a for a in result.alerts if a.labels.get("stream") == stream), timestamps)
    flagged = [p > 0.0 for p in paged]
    metrics = detection_metrics(timestamps, flagged, windows, probation=probation_rows(len(rows)))
    print(f"labelled windows: {metrics.windows}, paged: {metrics.detected}")
    print(f"precision (pages inside a window): {_pct(metrics.precision)}")
    print(f"recall (windows paged): {_pct(metrics.recall)}")
    if metrics.delays_seconds:
        print(f"detection delay: mean {metrics.mean_delay_rows:.1f} rows")
    series = Series(stream, timestamps, [v.value for v in rows], windows)
    for profile in _profiles(labels_path):
        scored = score_series(series, paged, 0.5, profile)
        nab = normalised(scored.raw, [series], profile)
        print(
            f"NAB {profile.name}, pages: {nab:.1f} (tp {scored.tp}, fp {scored.fp}, fn {scored.fn})"
        )


def _profiles(labels_path: Path) -> list[Profile]:
    root = labels_path.resolve().parent.parent
    if (root / "profiles.json").is_file():
        return list(load_profiles(root).values())
    # NAB's published cost matrices, for label files that come without them.
    return [
        Profile("standard", 1.0, 0.11, 1.0),
        Profile("reward_low_FP_rate", 1.0, 0.22, 1.0),
        Profile("reward_low_FN_rate", 1.0, 0.11, 2.0),
    ]


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"
