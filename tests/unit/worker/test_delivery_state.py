"""Delivery's persisted state without a broker: what a worker writes (held alerts with
their offsets, the notification log, deletions with an offset marker) is enough for the
next worker to rebuild its groups and to skip the alerts it replays, stale ones included."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import orjson
import pytest

from anomalyd.alert import firing, resolved
from anomalyd.clock import ManualClock
from anomalyd.config import parse_config
from anomalyd.domain import Alert
from anomalyd.metrics import Metrics
from anomalyd.notify.group import episode_key
from anomalyd.worker.delivery.service import Delivery
from anomalyd.worker.kafka.statelog import Handler, StateLog

T0 = 1_700_000_000.0
CONFIG = parse_config(
    """
receivers: [{name: console, type: log}]
route: {receiver: console, group_by: [alertname], group_wait: 0s, group_interval: 1m}
topics: {silences: s, notify_log: n, alert_state: h}
""",
    environ={},
)


class Topics:
    """Compacted topics in memory: every record ever written, in order, per topic."""

    def __init__(self) -> None:
        self.records: dict[str, list[tuple[bytes, bytes | None]]] = {"s": [], "n": [], "h": []}

    def state(self, handlers: dict[str, Handler]) -> State:
        return State(self, handlers)

    def written(self, topic: str) -> list[tuple[bytes, bytes | None]]:
        return list(self.records[topic])


class State:
    def __init__(self, topics: Topics, handlers: dict[str, Handler]) -> None:
        self._topics = topics
        self._handlers = handlers

    async def start(self) -> None:
        for topic, records in self._topics.records.items():
            for key, value in records:
                self._handlers[topic](key, value)

    async def stop(self) -> None:
        return None

    async def catch_up(self) -> None:
        return None

    async def put(self, topic: str, key: bytes, value: bytes | None) -> None:
        self._topics.records[topic].append((key, value))


@pytest.fixture
def topics() -> Topics:
    return Topics()


async def started(topics: Topics, clock: ManualClock) -> Delivery:
    delivery = Delivery(
        CONFIG, clock, Metrics(), state_factory=lambda _b, handlers, _t: topics.state(handlers)
    )
    await delivery.start()
    await delivery.assign({0})
    return delivery


def raw(alert: Alert) -> bytes:
    return orjson.dumps(alert.to_json())


def notified(topics: Topics) -> list[tuple[list[str], list[str]]]:
    """Each notification log write as (firing, resolved)."""
    entries = [orjson.loads(v) for _, v in topics.written("n") if v is not None]
    return [(e["firing"], e["resolved"]) for e in entries]


async def test_a_new_worker_rebuilds_the_groups_and_skips_what_it_replays(
    topics: Topics,
) -> None:
    clock = ManualClock(T0)
    a = firing({"alertname": "A", "stream": "s"}, {}, T0, "http://x")
    first = await started(topics, clock)
    await first.deliver(raw(a), 0, 5)
    await first.idle()
    assert notified(topics) == [([episode_key(a)], [])]
    [(key, value)] = topics.written("h")
    assert key == episode_key(a).encode()
    assert value is not None
    assert orjson.loads(value)["offset"] == 5
    await first.stop()

    # the next worker replays offset 5 (not committed): it holds it already
    second = await started(topics, clock)
    await second.deliver(raw(a), 0, 5)
    clock.set(T0 + 60)
    await second.flush_due()
    assert len(topics.written("h")) == 1
    assert len(notified(topics)) == 1  # no second page

    await second.deliver(raw(resolved(a, T0 + 61)), 0, 6)
    clock.set(T0 + 120)
    await second.flush_due()
    assert notified(topics)[-1] == ([], [episode_key(a)])
    *_, deletion, marker = topics.written("h")
    assert deletion == (episode_key(a).encode(), None)
    assert marker[0] == b"offset/0"
    assert orjson.loads(marker[1] or b"{}") == {"shard": 0, "offset": 6}
    await second.stop()

    # a third worker replays both after the deletion: the marker says they are done
    written = len(topics.written("h")), len(topics.written("n"))
    third = await started(topics, clock)
    await third.deliver(raw(a), 0, 5)
    await third.deliver(raw(resolved(a, T0 + 61)), 0, 6)
    clock.set(T0 + 600)
    await third.flush_due()
    assert (len(topics.written("h")), len(topics.written("n"))) == written
    await third.stop()


async def test_a_record_this_version_cannot_read_is_skipped(topics: Topics) -> None:
    topics.records["h"].append((b"abc", b"not json"))
    topics.records["n"].append((b"console:{}:{}", b'{"receiver": 1}'))
    topics.records["s"].append((b"x", b'{"matchers": []}'))
    delivery = await started(topics, ManualClock(T0))
    assert delivery.silences.all() == []
    await delivery.stop()


def _silence(silence_id: str | None, **fields: object) -> bytes:
    body = {"matchers": ['stream="db"'], "endsAt": "2099-01-01T00:00:00Z", **fields}
    return orjson.dumps({**body, "id": silence_id} if silence_id is not None else body)


async def test_a_hostile_record_on_the_state_topics_is_skipped_as_the_api_would(
    topics: Topics,
) -> None:
    """Whoever can write the topics can write anything: each of these is logged and
    skipped, and neither stops the records after it nor the worker's start."""
    topics.records["s"] += [
        (b"\xff", _silence(None)),  # a key that is not UTF-8
        (b"\xfe", None),
        (b"other", _silence("mute")),  # the id is not the key
        (b"forever", _silence("forever", endsAt=None)),  # the API never writes one
        (b"far", _silence("far", endsAt=1e300)),
        (b"regex", _silence("regex", matchers=['team=~"(a)\\1"'])),  # not RE2
        (b"list", b"[]"),
        (b"good", _silence("good")),
    ]
    topics.records["h"] += [(b"\xff", None), (b"fp", b'{"alert": [], "shard": 0}')]
    topics.records["n"] += [(b"\xff", None), (b"\xff", b"{}")]
    delivery = await started(topics, ManualClock(T0))
    assert [s.id for s in delivery.silences.all()] == ["good"]
    assert [s.to_api()["endsAt"] for s in delivery.silences.all()] == ["2099-01-01T00:00:00.000Z"]
    await delivery.stop()


def test_the_state_log_skips_a_record_no_handler_foresaw() -> None:
    def cannot_read(key: bytes, value: bytes | None) -> None:
        raise AttributeError("'list' object has no attribute 'get'")

    log = StateLog(["127.0.0.1:9"], {"t": cannot_read}, start_timeout=1)
    record = SimpleNamespace(headers=(), key=b"k", value=b"[]", offset=3)
    log._apply("t", record)  # logged and skipped: following the topics goes on


async def test_an_alert_written_here_is_taken_on_its_acknowledgement_once(
    topics: Topics,
) -> None:
    clock = ManualClock(T0)
    a = firing({"alertname": "A", "stream": "s"}, {}, T0, "http://x")
    b = firing({"alertname": "B", "stream": "s"}, {}, T0, "http://x")
    delivery = await started(topics, clock)
    await delivery.deliver(raw(a), 0, 4)  # read: everything up to 4 is taken
    assert delivery.written(raw(b), 0, 5)
    await delivery.idle()
    assert notified(topics) == [([episode_key(a)], []), ([episode_key(b)], [])]
    await delivery.deliver(raw(b), 0, 5)  # read back later: a replay
    await delivery.idle()
    assert len(notified(topics)) == 2
    assert [orjson.loads(v or b"{}")["offset"] for _, v in topics.written("h")] == [4, 5]
    await delivery.stop()


async def test_an_alert_written_behind_unread_ones_waits_for_them(topics: Topics) -> None:
    clock = ManualClock(T0)
    a = firing({"alertname": "A", "stream": "s"}, {}, T0, "http://x")
    b = firing({"alertname": "B", "stream": "s"}, {}, T0, "http://x")
    delivery = await started(topics, clock)
    await delivery.deliver(raw(a), 0, 3)
    assert not delivery.written(raw(b), 0, 5)  # offset 4 is not read yet
    assert not delivery.written(raw(b), 1, 0)  # a partition another worker reads
    await delivery.idle()
    assert notified(topics) == [([episode_key(a)], [])]
    await delivery.deliver(raw(b), 0, 5)  # in offset order, as read
    await delivery.idle()
    assert notified(topics) == [([episode_key(a)], []), ([episode_key(b)], [])]
    await delivery.stop()


class Restoring:
    """A worker whose state topics take until `go_on` to read back (`catch_up`)."""

    def __init__(self, topics: Topics, clock: ManualClock) -> None:
        self.started = asyncio.Event()
        self.go_on = asyncio.Event()
        restoring = self

        class SlowState(State):
            async def catch_up(self) -> None:
                restoring.started.set()
                await restoring.go_on.wait()

        self.delivery = Delivery(
            CONFIG, clock, Metrics(), state_factory=lambda _b, h, _t: SlowState(topics, h)
        )


async def test_alerts_of_a_shard_being_restored_join_its_groups_once_they_are_back(
    topics: Topics,
) -> None:
    """Taken before the shard's groups are back, an alert would start a group of its own
    and page without the alerts already held with it."""
    clock = ManualClock(T0)
    a = firing({"alertname": "A", "stream": "a"}, {}, T0, "http://x")
    b = firing({"alertname": "A", "stream": "b"}, {}, T0, "http://x")
    first = await started(topics, clock)
    await first.deliver(raw(a), 0, 3)
    await first.idle()
    await first.stop()

    worker = Restoring(topics, clock)
    await worker.delivery.start()
    assigning = asyncio.create_task(worker.delivery.assign({0}))
    await worker.started.wait()
    assert not worker.delivery.written(raw(b), 0, 4)  # on its write: not yet
    reading = asyncio.create_task(worker.delivery.deliver(raw(b), 0, 4))  # read: waits
    for _ in range(10):
        await asyncio.sleep(0)
    assert not reading.done()
    worker.go_on.set()
    await asyncio.gather(assigning, reading)
    clock.set(T0 + 60)
    await worker.delivery.flush_due()
    assert [sorted(fired) for fired, _ in notified(topics)] == [
        [episode_key(a)],
        sorted([episode_key(a), episode_key(b)]),  # b joined a's group: a was not left out
    ]
    await worker.delivery.stop()


async def test_episodes_read_before_a_crash_are_each_notified_after_it(topics: Topics) -> None:
    """The collapse seen after a SIGKILL under load: an alert's first episode paged, then
    its resolution and a whole second episode read while the group waited for its interval,
    and the worker died. Each episode is notified firing and then resolved, by the next
    worker, from the state it finds; none merges into another."""
    clock = ManualClock(T0)
    a = firing({"alertname": "A", "stream": "s"}, {}, T0, "http://x")
    later = firing(a.labels, {}, T0 + 6, "http://x")
    first = await started(topics, clock)
    await first.deliver(raw(a), 0, 1)  # group_wait 0: paged at once
    await first.idle()
    for offset, state in enumerate([resolved(a, T0 + 1), later, resolved(later, T0 + 7)], 2):
        await first.deliver(raw(state), 0, offset)  # held until the group interval ...
    await first.stop()  # ... which the worker does not live to see

    second = await started(topics, clock)
    for offset, state in enumerate([resolved(a, T0 + 1), later, resolved(later, T0 + 7)], 2):
        await second.deliver(raw(state), 0, offset)  # replayed: held already
    for minute in (1, 2, 3, 4):
        clock.set(T0 + 60 * minute)
        await second.flush_due()
    assert notified(topics) == [
        ([episode_key(a)], []),
        ([], [episode_key(a)]),
        ([episode_key(later)], []),
        ([], [episode_key(later)]),
    ]
    assert second.notify_state.held == {}
    await second.stop()


async def test_a_held_record_keyed_by_fingerprint_alone_is_deleted_with_its_episode(
    topics: Topics,
) -> None:
    """Earlier versions keyed held alerts by fingerprint: such a record is restored, and
    deleted under its own key once its episode is done, so it does not come back."""
    clock = ManualClock(T0)
    a = firing({"alertname": "A", "stream": "s"}, {}, T0, "http://x")
    body = {"alert": resolved(a, T0 + 1).to_json(), "shard": 0, "offset": 3, "receivedAt": T0}
    topics.records["h"].append((a.fingerprint.encode(), orjson.dumps(body)))
    delivery = await started(topics, clock)
    for minute in (1, 2, 3):
        clock.set(T0 + 60 * minute)
        await delivery.flush_due()
    assert notified(topics) == [([episode_key(a)], []), ([], [episode_key(a)])]
    deleted = {key for key, value in topics.written("h") if value is None}
    assert deleted == {a.fingerprint.encode(), episode_key(a).encode()}
    await delivery.stop()


async def test_a_closed_groups_log_entry_is_kept_until_it_expires(topics: Topics) -> None:
    clock = ManualClock(T0)
    a = firing({"alertname": "A", "stream": "s"}, {}, T0, "http://x")
    delivery = await started(topics, clock)
    await delivery.deliver(raw(a), 0, 1)
    await delivery.idle()
    await delivery.deliver(raw(resolved(a, T0 + 1)), 0, 2)
    clock.set(T0 + 60)
    await delivery.flush_due()
    assert notified(topics)[-1] == ([], [episode_key(a)])
    assert len(delivery.notify_state.nflog) == 1  # the group is closed; its entry stays
    await delivery.expire_log(T0 + 59)
    assert len(delivery.notify_state.nflog) == 1
    await delivery.expire_log(T0 + 61)
    assert len(delivery.notify_state.nflog) == 0
    assert topics.written("n")[-1] == (b'console:{}:{alertname="A"}', None)
    await delivery.stop()
