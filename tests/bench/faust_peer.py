"""The peer in `make bench`: a stock Faust agent that decodes each event with orjson and
scores it with a River HalfSpaceTrees, as a hand-written Faust app would (one model for
all streams: one per stream would need ~1.25 MB each, 1.25 GB for the bench's streams).

    python faust_peer.py BOOTSTRAP TOPIC EVENTS

Prints one JSON line: seconds from the first event to the last, and events/s.
"""

from __future__ import annotations

import os
import sys
import time

import faust
import orjson
from river import anomaly, compose, preprocessing


def main() -> None:
    bootstrap, topic_name, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
    app = faust.App(
        f"peer-{time.time_ns()}",
        broker=f"kafka://{bootstrap}",
        value_serializer="raw",
        broker_session_timeout=5.0,
        broker_heartbeat_interval=1.0,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        topic_partitions=4,
    )
    topic = app.topic(topic_name, value_serializer="raw")
    model = compose.Pipeline(preprocessing.MinMaxScaler(), anomaly.HalfSpaceTrees(seed=42))
    seen = {"n": 0, "first": 0.0}

    @app.agent(topic)
    async def score(stream: faust.Stream) -> None:  # type: ignore[type-arg]
        async for raw in stream:
            event = orjson.loads(raw)
            x = {"value": event["value"]}
            model.score_one(x)
            model.learn_one(x)
            seen["n"] += 1
            if seen["n"] == 1:
                seen["first"] = time.perf_counter()
            if seen["n"] >= total:
                elapsed = time.perf_counter() - seen["first"]
                result = {"seconds": elapsed, "events_per_s": total / elapsed}
                print(orjson.dumps(result).decode(), flush=True)
                os._exit(0)  # measured: a benchmark peer need not shut down gracefully

    # Faust would send print() through its logger; the bench reads our line from stdout.
    worker = faust.Worker(app, quiet=True, loglevel="error", redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
