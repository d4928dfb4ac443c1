"""Start-up time and event→webhook latency of a real worker on the embedded broker.

    make bench-latency

1. Start-up: an event that fires a rule is produced *before* the worker starts;
   the time from process start to that alert reaching the webhook receiver is
   start-up plus one event's trip through the pipeline.
2. Latency: background traffic at --rate events/s over --streams streams, with a
   spike on one stream every 100 ms; for each spike, the time from its `ts`
   (stamped just before it is produced) to the webhook's arrival. The producer
   lingers 5 ms, as Kafka's clients do by default (`--linger-ms`).
3. Where the time goes, per spike: to a bare aiokafka consumer of the same topic
   (the transport's own latency in the same run), to the alert's write to the
   alerts topic (its record timestamp), and from there to the webhook.

The embedded broker's fetch latency grows with the record batches it holds: with
one-record batches (`--linger-ms 0`) at 2k/s the bare consumer's p99 goes from
~12 ms to ~100 ms within 10 s, so the worker's figures are read beside it.

Prints a table and one JSON line. Timings depend on the machine: compare runs
made on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from anomalyd.domain import parse_time
from anomalyd.worker.kafka.admin import ensure_topics, free_port
from anomalyd.worker.kafka.broker import EmbeddedBroker
from helpers import WorkerProcess, eventually, read_all, worker_config


class Receiver:
    """A webhook receiver on 127.0.0.1 that stamps each payload's arrival."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        received = self.arrivals

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((time.time(), orjson.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def firing(self) -> list[tuple[float, dict[str, Any]]]:
        return [(t, p) for t, p in self.arrivals if p["status"] == "firing"]


class RawReader:
    """The transport's own latency, in the same run: a bare aiokafka consumer (its own
    group, the worker's fetch wait) reading the events topic, stamping each spike's
    arrival. What the worker adds is its latency minus this."""

    def __init__(self, bootstrap: str, topic: str, fetch_max_wait_ms: int) -> None:
        self.arrivals: dict[str, float] = {}
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id="bench.raw",
            auto_offset_reset="earliest",
            fetch_max_wait_ms=fetch_max_wait_ms,
            session_timeout_ms=2000,
            heartbeat_interval_ms=500,
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._read())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    async def _read(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=1000)
            now = time.time()
            for record in (r for records in batch.values() for r in records):
                if b"spike." in record.value:
                    self.arrivals.setdefault(orjson.loads(record.value)["stream"], now)


async def main(rate: float, streams: int, seconds: float, linger_ms: int) -> dict[str, Any]:
    receiver = Receiver()
    rule = {"name": "Spike", "type": "above", "threshold": 1000, "streams": ["*"]}
    async with EmbeddedBroker("127.0.0.1", free_port()) as broker:
        with tempfile.TemporaryDirectory() as tmp:
            path, config = worker_config(
                Path(tmp),
                broker.bootstrap,
                rules=[rule],
                receivers=[{"type": "webhook", "name": "bench", "url": receiver.url}],
            )
            config["kafka"]["session_timeout"] = "2s"  # the embedded broker's default
            path.write_text(yaml.safe_dump(config))
            topic = config["topics"]["events"]
            await ensure_topics(broker.bootstrap, {topic: 4})
            producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=linger_ms)
            await producer.start()
            raw = RawReader(broker.bootstrap, topic, fetch_max_wait_ms=10)  # the worker's
            await raw.start()  # it joins its group while the worker starts
            await producer.send_and_wait(
                topic, orjson.dumps({"stream": "warm", "ts": time.time(), "value": 5000})
            )
            worker = WorkerProcess(path, config, Path(tmp) / "worker.log").start()
            started = time.time()
            try:
                await eventually(receiver.firing, timeout=60, what="the first alert")
                startup = receiver.firing()[0][0] - started
                ready = await worker.wait_ready()
                sent = await _load(producer, topic, rate, streams, seconds)
                await eventually(
                    lambda: len(receiver.firing()) >= sent + 1, timeout=60, what="every spike"
                )
                verdict_p99 = histogram_quantile(worker.get("/metrics")[1], _VERDICT, 0.99)
                emitted = await _alert_stamps(broker.bootstrap, config["topics"]["alerts"])
            finally:
                await raw.stop()
                await producer.stop()
                worker.stop()
    spikes = [(parse_time(p["alerts"][0]["startsAt"]), t, p) for t, p in receiver.firing()[1:]]
    latencies = sorted((t - ts) * 1000 for ts, t, _ in spikes)
    # Where the time goes: event -> alert written to the alerts topic (fetch, judge,
    # publish) and alert written -> webhook received (fetch, group, POST).
    judged = sorted(
        (emitted[p["alerts"][0]["labels"]["stream"]] - ts) * 1000 for ts, _, p in spikes
    )
    delivered = sorted(
        (t - emitted[p["alerts"][0]["labels"]["stream"]]) * 1000 for _, t, p in spikes
    )
    transport = sorted(
        (raw.arrivals[p["alerts"][0]["labels"]["stream"]] - ts) * 1000 for ts, _, p in spikes
    )
    return {
        "startup_to_first_alert_s": round(startup, 2),
        "startup_to_ready_s": round(ready, 2),
        "background_rate": rate,
        "producer_linger_ms": linger_ms,
        "spikes": len(latencies),
        "verdict_ms_p99_at_most": verdict_p99 * 1000,
        "latency_ms_p50": round(statistics.median(latencies), 1),
        "latency_ms_p99": round(_p99(latencies), 1),
        "latency_ms_max": round(latencies[-1], 1),
        "raw_consumer_ms_p50": round(statistics.median(transport), 1),
        "raw_consumer_ms_p99": round(_p99(transport), 1),
        "to_alerts_topic_ms_p50": round(statistics.median(judged), 1),
        "to_alerts_topic_ms_p99": round(_p99(judged), 1),
        "alerts_topic_to_webhook_ms_p50": round(statistics.median(delivered), 1),
        "alerts_topic_to_webhook_ms_p99": round(_p99(delivered), 1),
    }


def _p99(ordered: list[float]) -> float:
    return ordered[int(0.99 * (len(ordered) - 1))]


async def _alert_stamps(bootstrap: str, topic: str) -> dict[str, float]:
    """When each stream's first firing alert was written to the alerts topic (its
    record timestamp, set by the worker's producer)."""
    stamps: dict[str, float] = {}
    for record in await read_all(bootstrap, topic):
        alert = orjson.loads(record.value)
        if alert["status"] == "firing":
            stamps.setdefault(alert["labels"]["stream"], record.timestamp / 1000)
    return stamps


_VERDICT = "anomalyd_event_latency_seconds"


def histogram_quantile(metrics: bytes, name: str, q: float) -> float:
    """The upper bound of the bucket holding the q-quantile of a Prometheus histogram
    (as `histogram_quantile` would bound it; inf if past the last finite bucket)."""
    buckets = [
        (float(bound), float(count))
        for bound, count in re.findall(
            rb"^" + name.encode() + rb'_bucket\{le="([^"]+)"\} (\S+)$', metrics, re.M
        )
    ]
    total = buckets[-1][1]
    return next(bound for bound, count in buckets if count >= q * total)


async def _load(
    producer: AIOKafkaProducer, topic: str, rate: float, streams: int, seconds: float
) -> int:
    """Background traffic at `rate`/s and a spike on a fresh stream every 100 ms.

    Returns how many spikes were sent."""
    start = time.monotonic()
    sent = spikes = 0
    while (elapsed := time.monotonic() - start) < seconds:
        due = int(elapsed * rate)
        while sent < due:
            stream = f"bg.{sent % streams}"
            event = {"stream": stream, "ts": time.time(), "value": 100.0}
            # Queued and batched by the producer; keyed by stream, as producers should.
            await producer.send(topic, orjson.dumps(event), key=stream.encode())
            sent += 1
        if elapsed * 10 >= spikes:
            stream = f"spike.{spikes}"
            spike = {"stream": stream, "ts": time.time(), "value": 5000.0}
            await producer.send(topic, orjson.dumps(spike), key=stream.encode())
            spikes += 1
        await asyncio.sleep(0.002)
    await producer.flush()
    return spikes


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=2000.0, help="background events/s")
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument(
        "--linger-ms", type=int, default=5, help="the producer's linger (Kafka clients' default)"
    )
    args = parser.parse_args()
    result = asyncio.run(main(args.rate, args.streams, args.seconds, args.linger_ms))
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(result))
