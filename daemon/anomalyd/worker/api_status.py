"""`GET /api/status`: what this worker runs and how it is doing, as JSON.

- `version` (anomalyd's), `config_version` (the config in force), `ready`;
- `reload`: the config file, and the last reload (time, trigger, outcome, the sections
  applied, the keys that wait for a restart, the problems of a rejected file);
- `streams`: how many this worker holds and, for at most `?limit=` (default 100) of
  them by name, or for `?stream=NAME`, each one's mode, model threshold (as feedback
  moved it), events seen, warm-up progress per field and drift status;
- `consumer`: per assigned partition, the highwater, the fetch position and their
  difference (the lag), once the worker is ready.

No config values are shown, only key names: nothing here can carry a secret.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from aiokafka.errors import IllegalStateError
from faust.exceptions import ConsumerNotStarted
from faust.types import TP
from faust.web import Request, Response, View

import anomalyd
from anomalyd.pipeline import Pipeline
from anomalyd.worker.transport import App

_log = structlog.get_logger(__name__)

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
#: A partition whose position is not known yet is reported without waiting for it.
_POSITION_TIMEOUT_S = 0.5


class Detection(Protocol):
    """What the page reads of the worker (`Runtime`)."""

    @property
    def pipeline(self) -> Pipeline: ...

    @property
    def serving(self) -> bool: ...


class Reloads(Protocol):
    """The reload history (`ConfigReloader`)."""

    def status(self) -> dict[str, Any]: ...


class Consumer(Protocol):
    """What the lag is read from (Faust's consumer)."""

    def assignment(self) -> set[TP]: ...

    def highwater(self, tp: TP) -> int: ...

    async def position(self, tp: TP) -> int | None: ...


@dataclass(frozen=True, slots=True)
class StatusQuery:
    limit: int = DEFAULT_LIMIT
    stream: str | None = None

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> StatusQuery:
        """From the query string; ValueError says what is wrong."""
        text = query.get("limit")
        limit = DEFAULT_LIMIT
        if text is not None:
            if not text.isdigit() or int(text) > MAX_LIMIT:
                raise ValueError(f"limit: a whole number from 0 to {MAX_LIMIT}")
            limit = int(text)
        return cls(limit, query.get("stream"))


def add_status_page(app: App, detection: Detection, reloads: Reloads | None) -> None:
    """Register `/api/status` on the app's web server."""

    @app.page("/api/status")
    async def status(web: View, request: Request) -> Response:
        try:
            query = StatusQuery.parse(request.query)
        except ValueError as error:
            return web.json({"error": str(error)}, status=400)
        body = status_body(detection.pipeline, detection.serving, reloads, query)
        body["consumer"] = {"lag": await consumer_lag(app.consumer) if detection.serving else None}
        return web.json(body)


def status_body(
    pipeline: Pipeline, ready: bool, reloads: Reloads | None, query: StatusQuery
) -> dict[str, Any]:
    """Everything but the consumer's lag. Pure: reads the pipeline, changes nothing."""
    engine = pipeline.engine
    if query.stream is not None:
        names = [query.stream] if engine.stream(query.stream) is not None else []
    else:
        names = sorted(engine.streams())[: query.limit]
    return {
        "version": anomalyd.__version__,
        "config_version": pipeline.version,
        "ready": ready,
        "reload": reloads.status() if reloads is not None else None,
        "streams": {
            "count": engine.stream_count,
            "shown": len(names),
            "items": [stream_status(pipeline, name) for name in names],
        },
    }


def stream_status(pipeline: Pipeline, name: str) -> dict[str, Any]:
    state = pipeline.engine.stream(name)
    if state is None:
        raise KeyError(name)
    drift = pipeline.drift.status(name) if pipeline.drift is not None else None
    return {
        "name": name,
        "mode": state.mode,
        "threshold": pipeline.engine.model_threshold(name),  # with feedback's adjustment
        "events": state.events,
        "warmup": {field: round(s.model.warmup_progress, 4) for field, s in state.models.items()},
        "drift": drift.value if drift is not None else None,
    }


async def consumer_lag(consumer: Consumer) -> list[dict[str, Any]] | None:
    """Per assigned partition: highwater - fetch position. None if the consumer is not
    running; a partition moved away meanwhile (a rebalance) shows no figures."""
    try:
        assigned = sorted(consumer.assignment())
    except ConsumerNotStarted:
        return None
    return [await _partition_lag(consumer, tp) for tp in assigned]


async def _partition_lag(consumer: Consumer, tp: TP) -> dict[str, Any]:
    row: dict[str, Any] = {"topic": tp.topic, "partition": tp.partition}
    try:
        highwater = consumer.highwater(tp)
        position = await asyncio.wait_for(consumer.position(tp), _POSITION_TIMEOUT_S)
    except (IllegalStateError, AssertionError, TimeoutError) as error:
        # aiokafka asserts on a partition no longer assigned; the rest is a race too.
        _log.debug(
            "partition_lag_unknown", topic=tp.topic, partition=tp.partition, detail=repr(error)
        )
        return {**row, "highwater": None, "position": None, "lag": None}
    lag = highwater - position if highwater is not None and position is not None else None
    return {**row, "highwater": highwater, "position": position, "lag": lag}


__all__ = ["StatusQuery", "add_status_page", "consumer_lag", "status_body"]
