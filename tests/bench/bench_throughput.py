"""`make bench`: the full pipeline against the transport's ceiling, in one run.

On the embedded broker, a fixed corpus (N events over K streams, one event per
message, keyed by stream, with injected spikes) is produced once; then, each in
turn on the same corpus:

- ceiling: raw aiokafka `getmany` + orjson decode (no processing);
- peer: a stock Faust agent + a River HalfSpaceTrees per stream (tests/bench/faust_peer.py);
- anomalyd in `rules` mode and in the default mode: a real worker process, timed from
  its first event scored to its last (the count of `anomalyd_event_latency_seconds`);
  and its start-up: process start to first event scored;

then latency at 2k events/s (`bench_latency.py`) and memory per stream at 1k/10k/100k
streams (`bench_memory.py`).

Also checks that the worker's alerts on the corpus are the ones `backtest` finds
(speed must not change results). Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_latency
import bench_memory
import orjson
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from anomalyd.backtest import backtest
from anomalyd.config import load_config
from anomalyd.domain import VALUE_FIELD, Event
from anomalyd.worker.kafka.admin import ensure_topics, free_port
from anomalyd.worker.kafka.broker import EmbeddedBroker
from helpers import WorkerProcess, consume, eventually, read_all, worker_config

_COUNT = re.compile(rb"^anomalyd_event_latency_seconds_count (\S+)$", re.M)


#: Seconds between two events of one stream: a metric scraped every 10 s.
CADENCE = 10.0


def corpus(events: int, streams: int, seed: int = 7) -> list[dict[str, Any]]:
    """Gaussian noise per stream, one event per stream every `CADENCE` seconds, with a
    spike every 5,000 events, in time order (drift windows close as they would live:
    a record per stream every 5 minutes, not one per event)."""
    rng = random.Random(seed)
    rounds = events // streams + 1
    start = time.time() - rounds * CADENCE  # in the past
    rows = []
    for i in range(events):
        stream = f"svc{i % streams}.latency_ms"
        ts = start + (i // streams) * CADENCE + (i % streams) * CADENCE / streams
        value = 100.0 + rng.gauss(0, 5)
        if i % 5000 == 4999:
            value = 1000.0
        rows.append({"stream": stream, "ts": ts, "value": value})
    return rows


async def produce_corpus(bootstrap: str, topic: str, rows: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, enable_idempotence=False)
    await producer.start()
    try:
        for row in rows:
            await producer.send(topic, orjson.dumps(row), key=row["stream"].encode())
        await producer.flush()
    finally:
        await producer.stop()


async def ceiling(bootstrap: str, topic: str, total: int, partitions: int) -> float:
    """Events/s of raw getmany + orjson over the whole topic."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen, started = 0, time.perf_counter()
        while seen < total:
            for records in (await consumer.getmany(timeout_ms=100, max_records=10_000)).values():
                for record in records:
                    orjson.loads(record.value)
                seen += len(records)
        return total / (time.perf_counter() - started)
    finally:
        await consumer.stop()


def peer(bootstrap: str, topic: str, total: int) -> float:
    out = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("faust_peer.py")),
            bootstrap,
            topic,
            str(total),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    # Faust's worker may write terminal escapes on the same line: find the JSON object.
    found = re.search(r'\{"seconds".*?\}', out.stdout)
    if found is None:
        raise RuntimeError(f"the Faust peer failed ({out.returncode}): {out.stderr[-2000:]}")
    return float(json.loads(found.group(0))["events_per_s"])


async def anomalyd(
    bootstrap: str, rows: list[dict[str, Any]], mode: str, tmp: Path
) -> dict[str, Any]:
    """A real worker on a pre-filled topic: start-up to first event, then events/s."""
    rule = {"name": "Spike", "type": "above", "threshold": 500}
    (tmp / mode).mkdir()
    receivers = [{"type": "log", "name": "log"}]
    path, config = worker_config(
        tmp / mode, bootstrap, rules=[rule], receivers=receivers, model={"mode": mode}
    )
    config["kafka"]["session_timeout"] = "2s"  # what the embedded broker gets by default
    path.write_text(yaml.safe_dump(config))
    await ensure_topics(bootstrap, dict.fromkeys(config["topics"].values(), 4))
    await produce_corpus(bootstrap, config["topics"]["events"], rows)
    worker = WorkerProcess(path, config, tmp / mode / "worker.log").start()
    try:

        def scored() -> float:
            match = _COUNT.search(worker.get("/metrics")[1])
            return float(match.group(1)) if match else 0.0

        await eventually(
            lambda: scored() >= 1, timeout=120, interval=0.02, what="the first event scored"
        )
        startup = time.monotonic() - worker.started_at
        first = time.perf_counter()
        await eventually(
            lambda: scored() >= len(rows), timeout=1800, interval=0.1, what="every event scored"
        )
        rate = len(rows) / (time.perf_counter() - first)
        await consume(bootstrap, config["topics"]["alerts"], 1, timeout=60)  # at least one
        fired = await _fired(bootstrap, config["topics"]["alerts"])
        same = fired == _backtest_fired(path, rows)
        return {
            "events_per_s": rate,
            "startup_s": startup,
            "alerts_match_backtest": same,
            "alerts": len(fired),
        }
    finally:
        worker.stop()


async def _fired(bootstrap: str, topic: str) -> set[tuple[str, float]]:
    alerts = [orjson.loads(record.value) for record in await read_all(bootstrap, topic)]
    return {(a["fingerprint"], a["startsAt"]) for a in alerts if a["status"] == "firing"}


def _backtest_fired(config_path: Path, rows: list[dict[str, Any]]) -> set[tuple[str, float]]:
    config = load_config(config_path)
    events = (Event(r["stream"], r["ts"], {VALUE_FIELD: r["value"]}) for r in rows)
    return {(a.fingerprint, a.to_json()["startsAt"]) for a in backtest(config, events).firing()}


async def main(events: int, streams: int) -> dict[str, Any]:
    rows = corpus(events, streams)
    results: dict[str, Any] = {"events": events, "streams": streams}
    async with EmbeddedBroker("127.0.0.1", free_port()) as broker:
        topic = "bench.events"
        await ensure_topics(broker.bootstrap, {topic: 4})
        await produce_corpus(broker.bootstrap, topic, rows)
        results["ceiling"] = await ceiling(broker.bootstrap, topic, events, 4)
        results["peer"] = peer(broker.bootstrap, topic, events)
        with tempfile.TemporaryDirectory() as tmp:
            for mode in ("rules", "hybrid"):
                results[f"anomalyd_{mode}"] = await anomalyd(
                    broker.bootstrap, rows, mode, Path(tmp)
                )
    # Each in a process and on a broker of its own, one after the other (this process
    # holds the corpus: its garbage collections would delay the latency bench's producer).
    results["latency"] = _latency(rate=2000, streams=200, seconds=15)
    results["memory"] = bench_memory.run()
    return results


def _latency(rate: float, streams: int, seconds: float) -> dict[str, Any]:
    script = Path(bench_latency.__file__)
    args = ["--rate", str(rate), "--streams", str(streams), "--seconds", str(seconds)]
    out = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def report(results: dict[str, Any]) -> None:
    ceiling_rate = results["ceiling"]
    rows: list[tuple[str, float, dict[str, Any] | None]] = [
        ("raw aiokafka getmany + orjson (ceiling)", ceiling_rate, None),
        ("stock Faust agent + River HST (peer)", results["peer"], None),
    ]
    for mode in ("rules", "hybrid"):
        r = results[f"anomalyd_{mode}"]
        rows.append((f"anomalyd worker, {mode} mode", r["events_per_s"], r))
    print(
        f"{results['events']} events over {results['streams']} streams, embedded broker, one worker"
    )
    print(
        f"{'':42} {'events/s':>10} {'µs/event':>9} {'x ceiling':>9}"
        f" {'start-up s':>10} {'= backtest':>10}"
    )
    for name, rate, extra in rows:
        start = f"{extra['startup_s']:.2f}" if extra else ""
        same = str(extra["alerts_match_backtest"]) if extra else ""
        print(
            f"{name:42} {rate:>10,.0f} {1e6 / rate:>9.1f} {rate / ceiling_rate:>9.3f}"
            f" {start:>10} {same:>10}"
        )
    latency = results["latency"]
    print(
        f"\nat {latency['background_rate']:,.0f} events/s (default config, group_wait 0,"
        f" producer linger {latency['producer_linger_ms']} ms):"
        f" event->verdict p99 <= {latency['verdict_ms_p99_at_most']:g} ms (histogram bucket),"
        f" event->webhook p50 {latency['latency_ms_p50']} ms, p99 {latency['latency_ms_p99']} ms;"
        f" start-up to first alert {latency['startup_to_first_alert_s']} s"
    )
    print(
        "  where it goes (p50 / p99 ms): event -> a bare consumer (the transport)"
        f" {latency['raw_consumer_ms_p50']} / {latency['raw_consumer_ms_p99']};"
        f" event -> alert written {latency['to_alerts_topic_ms_p50']}"
        f" / {latency['to_alerts_topic_ms_p99']};"
        f" alert written -> webhook {latency['alerts_topic_to_webhook_ms_p50']}"
        f" / {latency['alerts_topic_to_webhook_ms_p99']}"
    )
    print(f"\n{'memory (RSS)':<14} {'streams':>8} {'events':>7} {'KB/stream':>10}")
    for row in results["memory"]:
        kb = row["bytes_per_stream"] / 1024
        print(
            f"{row['detector']:<14} {row['streams']:>8} {row['events_per_stream']:>7} {kb:>10.1f}"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--streams", type=int, default=1_000)
    args = parser.parse_args()
    report(asyncio.run(main(args.events, args.streams)))
