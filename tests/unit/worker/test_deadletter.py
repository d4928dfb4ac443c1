"""One record never stops the worker: dead letters cut to fit a request, send failures
told apart (the record's own, or the broker's), and a record whose judging raises
dead-lettered while the others of its batch are judged."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, MessageSizeTooLargeError
from faust.exceptions import ProducerSendError
from faust.types import TP

from anomalyd.clock import ManualClock
from anomalyd.config import parse_config
from anomalyd.metrics import Metrics
from anomalyd.worker.detection.flow import EventFlow
from anomalyd.worker.detection.runtime import Runtime
from anomalyd.worker.kafka.deadletter import (
    HEADROOM,
    MAX_KEY_BYTES,
    coordinates_only,
    dead_letter,
    record_at_fault,
)
from anomalyd.worker.kafka.records import default_partition

T0 = 1_700_000_000.0
MAX_REQUEST = 1_000_000


def record(value: bytes | None, key: bytes | None = b"k", offset: int = 7) -> Any:
    return SimpleNamespace(
        topic="events", partition=2, offset=offset, key=key, value=value, timestamp=None
    )


def test_a_record_that_fits_is_dead_lettered_as_it_came() -> None:
    letter = dead_letter(record(b"x" * 1000), "oversized", "too big", MAX_REQUEST)
    assert (letter.key, letter.value, letter.truncated) == (b"k", b"x" * 1000, False)
    assert dict(letter.headers) == {"reason": b"oversized: too big", "source": b"events/2/7"}


def test_a_record_too_large_for_a_request_is_cut_to_fit() -> None:
    value, key = b"v" * 1_500_000, b"k" * 600_000
    letter = dead_letter(record(value, key), "oversized", "too big", MAX_REQUEST)
    headers = dict(letter.headers)
    assert letter.truncated
    assert headers["truncated"] == b"true"
    assert headers["original_size"] == b"1500000"
    assert headers["original_key_size"] == b"600000"
    assert letter.key == key[:MAX_KEY_BYTES]
    assert letter.value is not None
    assert value.startswith(letter.value)
    assert len(letter.key) + len(letter.value) <= MAX_REQUEST - HEADROOM


def test_coordinates_only_carry_no_content() -> None:
    letter = coordinates_only(record(b"secret" * 10), "judge_error", "boom")
    headers = dict(letter.headers)
    assert (letter.key, letter.value) == (None, b"")
    assert headers["source"] == b"events/2/7"
    assert headers["original_size"] == b"60"
    assert headers["content"] == b"omitted"


def sent_error(cause: BaseException) -> ProducerSendError:
    try:
        raise ProducerSendError(f"Error while sending: {cause!r}") from cause
    except ProducerSendError as error:
        return error


@pytest.mark.parametrize(
    ("error", "at_fault"),
    [
        (sent_error(MessageSizeTooLargeError("1500244 bytes")), True),
        (ValueError("year 10000 is out of range"), True),
        (sent_error(KafkaTimeoutError()), False),
        (KafkaConnectionError("refused"), False),
        (OSError("reset"), False),
    ],
)
def test_only_failures_of_the_record_itself_are_confined(
    error: BaseException, at_fault: bool
) -> None:
    assert record_at_fault(error) is at_fault


CONFIG = """
model: {mode: rules}
drift: {enabled: false}
rules: [{name: High, type: above, threshold: 500, severity: critical}]
"""


async def test_a_record_whose_judging_raises_is_dead_lettered_and_the_batch_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime = Runtime(parse_config(CONFIG), ManualClock(T0), Metrics())
    process = runtime.pipeline.process

    def fragile(event: Any, now: float) -> Any:
        if event.stream == "boom":
            raise ZeroDivisionError("a bug met by one event")
        return process(event, now=now)

    monkeypatch.setattr(runtime.pipeline, "process", fragile)
    dead: list[dict[str, Any]] = []
    rekeyed: list[dict[str, Any]] = []

    async def send_dead(**kwargs: Any) -> None:
        dead.append(kwargs)

    async def send_rekeyed(**kwargs: Any) -> None:
        rekeyed.append(kwargs)

    snapshots = SimpleNamespace(mark=lambda stream, partition: None)
    flow = EventFlow(
        runtime,
        snapshots,  # type: ignore[arg-type]
        partitions=1,
        events_partitions=lambda: 1,
        generation=lambda: 0,
        highwater=lambda tp: None,
        partitioner=default_partition,
        send_dead=send_dead,
        send_rekeyed=send_rekeyed,
    )
    published: list[Any] = []

    async def publish(outcome: Any) -> None:
        published.extend(outcome.alerts)

    monkeypatch.setattr(runtime, "publish", publish)
    batch = [
        record(orjson.dumps({"stream": s, "ts": T0, "value": v}), s.encode(), offset)
        for offset, (s, v) in enumerate([("ok", 1), ("boom", 1), ("ok", 900)])
    ]
    sends = flow.events.judge(TP("events", 0), batch)
    await flow.events.publish(sends)

    assert [letter["headers"][0][1].split(b":")[0] for letter in dead] == [b"judge_error"]
    assert dict(dead[0]["headers"])["source"] == b"events/2/1"
    assert [alert.labels["stream"] for alert in published] == ["ok"]  # behind the bad one
    assert runtime.metrics.event_errors.labels("judge_error")._value.get() == 1
