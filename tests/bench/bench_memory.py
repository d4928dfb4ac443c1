"""Memory per stream of the detection engine, measured as resident memory.

    make bench-memory

Each measurement runs in a fresh process: the engine with the default config
(and, at 1k streams, each detector kind) is fed K events on each of N streams;
(RSS after - RSS before) / N is the cost of one stream's state: rule memory,
features, model, calibration and alert life cycles. Also the size of one
stream's snapshot (what a restart or rebalance moves).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def measure(streams: int, events: int, detector: str) -> dict[str, object]:
    """Runs in the child process."""
    from anomalyd.config import load_config
    from anomalyd.decide import Engine
    from anomalyd.domain import VALUE_FIELD, Event

    config = load_config(
        REPO / "config" / "anomalyd.yaml", overrides=[f"model.detector={detector}"]
    )
    engine = Engine(config.rules, config.model, config.app.external_url)
    rng = random.Random(1)
    names = [f"stream.{i}" for i in range(streams)]
    values = [rng.gauss(100.0, 5.0) for _ in range(1000)]
    before = _rss_bytes()
    for k in range(events):
        for i, name in enumerate(names):
            engine.process(Event(name, 1e9 + 60.0 * k, {VALUE_FIELD: values[(i + k) % 1000]}), 1e9)
    after = _rss_bytes()
    snapshot = engine.snapshot(names[0]) or b""
    return {
        "detector": detector,
        "streams": streams,
        "bytes_per_stream": round((after - before) / streams),
        "snapshot_bytes": len(snapshot),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=3, help="events per stream")
    parser.add_argument("--child", nargs=2, metavar=("STREAMS", "DETECTOR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(int(args.child[0]), args.events, args.child[1])))
        return
    plan = [(n, "robust") for n in (1_000, 10_000, 100_000)]
    plan += [(1_000, kind) for kind in ("gaussian", "sad", "hst")]
    results = []
    for streams, detector in plan:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--events",
                str(args.events),
                "--child",
                str(streams),
                detector,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        results.append(json.loads(out.stdout))
    print(f"{'detector':<10} {'streams':>8} {'KB/stream':>10} {'snapshot B':>11}")
    for r in results:
        kb = int(r["bytes_per_stream"]) / 1024  # type: ignore[call-overload]
        print(f"{r['detector']:<10} {r['streams']:>8} {kb:>10.1f} {r['snapshot_bytes']:>11}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
