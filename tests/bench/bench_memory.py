"""Memory per stream of the detection engine, measured as resident memory.

    make bench-memory

Each measurement runs in a fresh process: the pipeline (engine and drift monitor)
with the default config (and, at 1k streams, each detector kind) is fed K events
on each of N streams; (RSS after - RSS before) / N is the cost of one stream's
state: rule memory, features, model, calibration, alert life cycles and drift
windows. Also the size of one
stream's snapshot (what a restart or rebalance moves).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def measure(
    streams: int, events: int, cadence: float, config_path: Path, overrides: Sequence[str]
) -> dict[str, object]:
    """Runs in the child process: the whole pipeline, engine and drift monitor."""
    from anomalyd.config import load_config
    from anomalyd.domain import VALUE_FIELD, Event
    from anomalyd.pipeline import Pipeline

    config = load_config(config_path, overrides=list(overrides))
    pipeline = Pipeline(config)
    rng = random.Random(1)
    names = [f"stream.{i}" for i in range(streams)]
    values = [rng.gauss(100.0, 5.0) for _ in range(1000)]
    before = _rss_bytes()
    for k in range(events):
        ts = 1e9 + cadence * k
        for i, name in enumerate(names):
            pipeline.process(Event(name, ts, {VALUE_FIELD: values[(i + k) % 1000]}), ts)
    after = _rss_bytes()
    snapshot = pipeline.snapshot(names[0]) or b""  # engine and drift: what a restart moves
    return {
        "detector": config.model.detector,
        "streams": streams,
        "events_per_stream": events,
        "bytes_per_stream": round((after - before) / streams),
        "snapshot_bytes": len(snapshot),
    }


def run(events: int = 3) -> list[dict[str, object]]:
    """Fresh streams (`events` each, a minute apart) at 1k/10k/100k streams and per
    detector; then streams in steady state: 1,500 events a second apart, so each has a
    warm model and a full open drift window (its 20-minute window's sample; a stream's
    first day only learns its daily cycle, so there is no drift reference yet)."""
    plan = [(n, events, "robust", 60.0) for n in (1_000, 10_000, 100_000)]
    plan += [(1_000, events, kind, 60.0) for kind in ("gaussian", "sad", "hst")]
    plan += [(1_000, 1_500, "robust", 1.0)]
    config = REPO / "config" / "anomalyd.yaml"
    return [
        measure_apart(streams, count, cadence, config, [f"model.detector={detector}"])
        for streams, count, detector, cadence in plan
    ]


def measure_apart(
    streams: int, events: int, cadence: float, config: Path, overrides: Sequence[str]
) -> dict[str, object]:
    """`measure` in a fresh process, so nothing else this process holds is counted."""
    child = [str(streams), str(events), str(cadence), str(config), *overrides]
    out = subprocess.run(
        [sys.executable, __file__, "--child", *child],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=3, help="events per fresh stream")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        streams, events, cadence, config, *overrides = args.child
        result = measure(int(streams), int(events), float(cadence), Path(config), overrides)
        print(json.dumps(result))
        return
    results = run(args.events)
    print(f"{'detector':<10} {'streams':>8} {'events':>7} {'KB/stream':>10} {'snapshot B':>11}")
    for r in results:
        kb = int(r["bytes_per_stream"]) / 1024  # type: ignore[call-overload]
        print(
            f"{r['detector']:<10} {r['streams']:>8} {r['events_per_stream']:>7}"
            f" {kb:>10.1f} {r['snapshot_bytes']:>11}"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
