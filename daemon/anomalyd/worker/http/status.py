"""`GET /api/status`: what this worker runs and how it is doing, as JSON.

- `version` (anomalyd's), `config_version` (the config in force), `ready`;
- `reload`: the config file, and the last reload (time, trigger, outcome, the sections
  applied, the keys that wait for a restart, the problems of a rejected file);
- `streams`: how many this worker holds and, for at most `?limit=` (default 100) of
  them by name, or for `?stream=NAME`, each one's mode, model threshold (as feedback
  moved it), events seen, warm-up progress per field and drift status;
- `consumer`: per assigned partition, the highwater, the fetch position and their
  difference (the lag), once the worker is ready.

No config values are shown, only key names: nothing here can carry a secret. The page
is open to anyone who reaches the port, so a rejected file's problems are shown by
location and kind only (`{"location": "receivers[0].url", "kind": "invalid_value"}`):
the full text, which may quote what the file holds, is in the log alone.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import anomalyd
from anomalyd.pipeline import Pipeline
from anomalyd.worker.http.web import Answer, Request

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000


#: A key path as the config's problems start with it: `receivers[0].url`, `--set` aside.
_KEY_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+|\[\d+\])*")
_YAML_MARK = re.compile(r"at (line \d+, column \d+)")
#: What a problem's text says, as a word to show instead of the text: the first that fits.
_KINDS = (
    ("not valid YAML", "yaml_syntax"),
    ("cannot read the config file", "unreadable"),
    ("environment variable", "unset_environment_variable"),
    ("Field required", "missing"),
    ("Extra inputs are not permitted", "unknown_key"),
    ("is not defined", "unknown_reference"),
    ("must be text", "wrong_type"),
    ("Input should be", "wrong_type_or_value"),
)


class StatusSource(Protocol):
    """What the page reads of the worker (`Runtime`)."""

    @property
    def pipeline(self) -> Pipeline: ...

    @property
    def serving(self) -> bool: ...


class Reloads(Protocol):
    """The reload history (`ConfigReloader`)."""

    def status(self) -> dict[str, Any]: ...


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


#: The consumer's lag per assigned partition (`kafka.lag.consumer_lag`); None before it runs.
Lag = Callable[[], Awaitable[list[dict[str, Any]] | None]]


@dataclass(frozen=True, slots=True)
class Owners:
    """Who owns which stream: this worker's name, and the worker that wrote a stream's
    latest alert as the cluster view saw it (`delivery.cluster_alerts`)."""

    worker: str
    owner: Callable[[str], str | None]


async def status_page(
    request: Request,
    detection: StatusSource,
    reloads: Reloads | None,
    lag: Lag,
    owners: Owners | None = None,
) -> Answer:
    """`GET /api/status`."""
    try:
        query = StatusQuery.parse(request.query)
    except ValueError as error:
        return Answer({"error": str(error)}, 400)
    body = status_body(detection.pipeline, detection.serving, reloads, query)
    body["consumer"] = {"lag": await lag() if detection.serving else None}
    return Answer(with_owners(body, query, owners) if owners is not None else body)


def with_owners(body: dict[str, Any], query: StatusQuery, owners: Owners) -> dict[str, Any]:
    """Each stream shown names its worker (this one); a `?stream=` held by another
    worker is answered with that worker's name, if the stream has alerted (`null`
    otherwise: no worker is known to own it)."""
    streams = body["streams"]
    items = [{**item, "worker": owners.worker} for item in streams["items"]]
    shown = {**streams, "items": items}
    if query.stream is not None and not items:
        shown["elsewhere"] = {"name": query.stream, "worker": owners.owner(query.stream)}
    return {**body, "worker": owners.worker, "streams": shown}


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
        "reload": reload_shown(reloads.status()) if reloads is not None else None,
        "streams": {
            "count": engine.stream_count,
            "shown": len(names),
            "items": [stream_status(pipeline, name) for name in names],
        },
    }


def reload_shown(status: dict[str, Any]) -> dict[str, Any]:
    """The reload history with each problem reduced to its location and kind."""
    last = status.get("last")
    if not last:
        return status
    problems = [problem_shown(str(text)) for text in last.get("problems", ())]
    return {**status, "last": {**last, "problems": problems}}


def problem_shown(text: str) -> dict[str, str]:
    """`receivers[0].url: Value error, ...` -> {"location": "receivers[0].url", "kind":
    "invalid_value"}. Nothing of the text after the location is shown: it may quote a
    value of the file (a secret, once `${VAR}` is expanded)."""
    head, colon, message = text.partition(": ")
    location = head if colon and _KEY_PATH.fullmatch(head) else None
    if location is None:
        message = text
        mark = _YAML_MARK.search(text) if text.startswith("not valid YAML") else None
        location = mark.group(1) if mark is not None else "config"
    kind = next((kind for needle, kind in _KINDS if needle in message), "invalid_value")
    return {"location": location, "kind": kind}


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


__all__ = ["StatusQuery", "problem_shown", "status_body", "status_page"]
