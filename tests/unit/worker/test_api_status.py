"""/api/status without a web server: the body from a pipeline and the reload history,
the query, the consumer's lag, and no secret anywhere in it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiokafka.errors import IllegalStateError
from faust.exceptions import ConsumerNotStarted
from faust.types import TP

import anomalyd
from anomalyd.clock import ManualClock
from anomalyd.config import AnomalydConfig, load_config, parse_config
from anomalyd.domain import Event
from anomalyd.metrics import Metrics
from anomalyd.pipeline import Pipeline
from anomalyd.worker.http.status import StatusQuery, status_body
from anomalyd.worker.kafka.lag import consumer_lag
from anomalyd.worker.reload import ConfigReloader

T0 = 1_700_000_000.0


def pipeline_with(streams: list[str], events: int = 3) -> Pipeline:
    pipeline = Pipeline(parse_config("model: {mode: hybrid, warmup: 10, seasonality: false}\n"))
    for name in streams:
        for i in range(events):
            pipeline.process(Event(name, T0 + i, {"value": 1.0 + i}), now=T0 + i)
    return pipeline


def test_the_body_shows_versions_readiness_and_streams_by_name() -> None:
    pipeline = pipeline_with(["c", "a", "b"])
    body = status_body(pipeline, True, None, StatusQuery(limit=2))
    assert body["version"] == anomalyd.__version__
    assert body["config_version"] == pipeline.version
    assert body["ready"] is True
    assert body["reload"] is None
    streams = body["streams"]
    assert (streams["count"], streams["shown"]) == (3, 2)
    assert [s["name"] for s in streams["items"]] == ["a", "b"]
    assert streams["items"][0] == {
        "name": "a",
        "mode": "hybrid",
        "threshold": 0.5,
        "events": 3,
        "warmup": {"value": 0.3},
        "drift": "stable",
    }


def test_one_stream_by_name() -> None:
    pipeline = pipeline_with(["a", "b"])
    body = status_body(pipeline, False, None, StatusQuery(stream="b"))
    assert [s["name"] for s in body["streams"]["items"]] == ["b"]
    unknown = status_body(pipeline, False, None, StatusQuery(stream="nope"))
    assert unknown["streams"]["items"] == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, StatusQuery()),
        ({"limit": "5"}, StatusQuery(5)),
        ({"stream": "x"}, StatusQuery(100, "x")),
    ],
)
def test_the_query(query: dict[str, str], expected: StatusQuery) -> None:
    assert StatusQuery.parse(query) == expected


@pytest.mark.parametrize("limit", ["-1", "x", "1e3", "10001"])
def test_a_bad_limit_is_refused(limit: str) -> None:
    with pytest.raises(ValueError, match="limit"):
        StatusQuery.parse({"limit": limit})


# --- the consumer ---------------------------------------------------------------------------------


class Consumer:
    def __init__(self, offsets: dict[TP, tuple[int | None, int | None]]) -> None:
        self.offsets = offsets
        self.started = True

    def assignment(self) -> set[TP]:
        if not self.started:
            raise ConsumerNotStarted("not yet")
        return set(self.offsets)

    def highwater(self, tp: TP) -> int:
        value = self.offsets[tp][0]
        if value is None:
            raise AssertionError("Partition is not assigned")
        return value

    async def position(self, tp: TP) -> int | None:
        value = self.offsets[tp][1]
        if value is None:
            raise IllegalStateError(f"Partition {tp} is not assigned")
        return value


async def test_lag_per_partition() -> None:
    consumer = Consumer(
        {TP("events", 1): (120, 100), TP("events", 0): (50, 50), TP("x", 0): (9, None)}
    )
    assert await consumer_lag(consumer) == [
        {"topic": "events", "partition": 0, "highwater": 50, "position": 50, "lag": 0},
        {"topic": "events", "partition": 1, "highwater": 120, "position": 100, "lag": 20},
        {"topic": "x", "partition": 0, "highwater": None, "position": None, "lag": None},
    ]
    consumer.started = False
    assert await consumer_lag(consumer) is None


# --- secrets --------------------------------------------------------------------------------------

SECRETS = {
    "API_TOKEN": "api-token-s3cret-1",
    "HOOK_SECRET": "whsec_" + "c2VjcmV0LXdlYmhvb2sta2V5LXZhbHVlLTE=",
    "BEARER": "bearer-s3cret-1",
    "SMTP_PASSWORD": "smtp-s3cret-1",
    "BASIC_PASSWORD": "basic-s3cret-1",
}
WITH_SECRETS: dict[str, Any] = {
    "http": {"api_token": "${API_TOKEN}"},
    "receivers": [
        {
            "name": "hook",
            "type": "webhook",
            "url": "https://example.com/hook",
            "secret": "${HOOK_SECRET}",
            "basic_auth": {"username": "u", "password": "${BASIC_PASSWORD}"},
        },
        {
            "name": "am",
            "type": "alertmanager",
            "url": "https://am.example.com",
            "bearer_token": "${BEARER}",
        },
        {
            "name": "mail",
            "type": "email",
            "smarthost": "smtp.example.com:587",
            "from": "a@example.com",
            "to": ["b@example.com"],
            "auth": {"username": "u", "password": "${SMTP_PASSWORD}"},
        },
    ],
    "route": {"receiver": "hook"},
}


class Detection:
    async def reconfigure(self, config: AnomalydConfig) -> None:
        return None


class Notification:
    def prepare(self, config: AnomalydConfig) -> Callable[[], None]:
        return lambda: None


def rotated(secrets: dict[str, str]) -> dict[str, str]:
    return {name: value.replace("1", "2") for name, value in secrets.items()}


async def test_no_secret_ever_shows(tmp_path: Path) -> None:
    environ = dict(SECRETS)
    path = tmp_path / "anomalyd.yaml"
    path.write_text(yaml.safe_dump(WITH_SECRETS))

    def load(p: Path) -> AnomalydConfig:
        return load_config(p, environ=environ)

    config = load(path)
    pipeline = Pipeline(config)
    pipeline.process(Event("s", T0, {"value": 1.0}), now=T0)
    reloader = ConfigReloader(
        path, config, Detection(), Notification(), ManualClock(T0), Metrics(), load=load
    )
    bodies = []
    # Secrets rotated: a restart is needed for the API token, the receivers apply live.
    environ.update(rotated(SECRETS))
    assert (await reloader.reload("sighup")).needs_restart == ("http.api_token",)
    bodies.append(status_body(pipeline, True, reloader, StatusQuery()))
    # A rejected file whose broken line holds a secret.
    path.write_text(f'http:\n  api_token: "{SECRETS["API_TOKEN"]}\n  port: [1\n')
    assert (await reloader.reload("file")).outcome == "rejected"
    bodies.append(status_body(pipeline, True, reloader, StatusQuery()))

    text = orjson.dumps(bodies).decode()
    assert "http.api_token" in text
    for value in [*SECRETS.values(), *rotated(SECRETS).values()]:
        assert value not in text


async def test_a_rejected_files_problems_show_by_location_and_kind_only(tmp_path: Path) -> None:
    """The page is unauthenticated: a problem whose text quotes a value of the file (here
    a matcher built from a secret) is shown by where and what, never by its text."""
    environ = {**SECRETS, "TEAM": "(team-s3cret-1"}
    path = tmp_path / "anomalyd.yaml"
    path.write_text(yaml.safe_dump(WITH_SECRETS))

    def load(p: Path) -> AnomalydConfig:
        return load_config(p, environ=environ)

    config = load(path)
    reloader = ConfigReloader(
        path, config, Detection(), Notification(), ManualClock(T0), Metrics(), load=load
    )
    route = {"receiver": "hook", "routes": [{"matchers": ['team=~"${TEAM}"']}]}
    path.write_text(yaml.safe_dump({**WITH_SECRETS, "route": route, "mystery": 1}))
    record = await reloader.reload("file")
    assert record.outcome == "rejected"

    body = status_body(Pipeline(config), True, reloader, StatusQuery())
    assert body["reload"]["last"]["problems"] == [
        {"location": "route.routes[0].matchers[0]", "kind": "invalid_value"},
        {"location": "mystery", "kind": "unknown_key"},
    ]
    assert environ["TEAM"] not in orjson.dumps(body).decode()
    path.write_text("http: {port: [1\n")
    await reloader.reload("file")
    shown = status_body(Pipeline(config), True, reloader, StatusQuery())["reload"]["last"]
    assert shown["problems"] == [{"location": "line 2, column 1", "kind": "yaml_syntax"}]
