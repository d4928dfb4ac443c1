"""BatchingConsumer over an in-memory stand-in for Faust's consumer (the bookkeeping of
faust-streaming 0.15.3 it acks on): chunks judged and acked in one step, then published;
topics without a handler handed back to Faust; a rebalance stops the rest of a fetch;
offset gaps; commits every N acks; commits wait for publishes under way."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from faust.types import TP
from intervaltree import Interval, IntervalTree

from anomalyd.worker.kafka.batching import CHUNK, BatchingConsumer

EVENTS = TP("events", 0)
OTHER = TP("other", 0)


class Fetched:
    """What Faust's consumer hands over: one fetch, then nothing."""

    def __init__(self, records: dict[TP, list[Any]]) -> None:
        self._fetch = records

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:
        records, self._fetch = self._fetch, {}
        return records, None


class Consumer(BatchingConsumer, Fetched):
    """The attributes of Faust's consumer the mixin reads and writes, in memory."""

    def __init__(self, records: dict[TP, list[Any]], handler: Any, every: int | None) -> None:
        super().__init__(records)
        self.app = SimpleNamespace(
            batch_handlers={"events": handler},
            consumer_generation_id=1,
            topics=SimpleNamespace(acks_enabled_for=lambda topic: True),
            monitor=SimpleNamespace(track_tp_end_offset=lambda tp, offset: None),
        )
        self.flow_active = True
        self._buffered_partitions = set()
        self._read_offset: defaultdict[TP, int | None] = defaultdict(lambda: None)
        self._committed_offset: defaultdict[TP, int | None] = defaultdict(lambda: None)
        self._acked_index: defaultdict[TP, set[int]] = defaultdict(set)
        self._acked: defaultdict[TP, list[int]] = defaultdict(list)
        self._gap: defaultdict[TP, IntervalTree] = defaultdict(IntervalTree)
        self._n_acked = 0
        self._waiting_for_ack = None
        self._commit_every = every
        self.commits = 0

    async def commit(self) -> None:
        self.commits += 1

    def highwater(self, tp: TP) -> int:
        return 1_000_000


class Handler:
    """Notes what was acked when each chunk was judged and when it was published."""

    def __init__(self) -> None:
        self.consumer: Consumer | None = None
        self.judged: list[tuple[list[int], list[int]]] = []
        self.published: list[tuple[list[int], list[int]]] = []
        self.is_ready = True

    async def ready(self, tp: TP) -> bool:
        return self.is_ready

    def judge(self, tp: TP, records: Sequence[Any]) -> list[int]:
        assert self.consumer is not None
        offsets = [record.offset for record in records]
        self.judged.append((offsets, list(self.consumer._acked[tp])))
        return offsets

    async def publish(self, judged: list[int]) -> None:
        assert self.consumer is not None
        self.published.append((judged, list(self.consumer._acked[EVENTS])))


def records(offsets: Sequence[int]) -> list[Any]:
    return [SimpleNamespace(offset=offset, value=b"x") for offset in offsets]


def consumer(fetch: dict[TP, list[Any]], every: int | None = None) -> tuple[Consumer, Handler]:
    handler = Handler()
    handler.consumer = Consumer(fetch, handler, every)
    return handler.consumer, handler


async def test_each_chunk_is_judged_and_acked_in_one_step_then_published() -> None:
    offsets = range(2 * CHUNK + 500)
    c, h = consumer({EVENTS: records(offsets)})
    rest, _ = await c._wait_next_records(1.0)
    assert rest == {}
    assert [len(chunk) for chunk, _ in h.judged] == [CHUNK, CHUNK, 500]
    for (chunk, acked_before), (published, acked_after) in zip(h.judged, h.published, strict=True):
        assert published == chunk
        assert not set(chunk) & set(acked_before)  # judged before its ack...
        assert set(chunk) <= set(acked_after)  # ...and acked before its publish
    assert c._acked[EVENTS] == list(offsets)
    assert c._read_offset[EVENTS] == offsets[-1]


async def test_topics_without_a_handler_are_handed_back_to_faust() -> None:
    other = records([0, 1])
    c, _ = consumer({OTHER: other, EVENTS: records([0])})
    rest, _ = await c._wait_next_records(1.0)
    assert rest == {OTHER: other}
    assert c._acked[OTHER] == []


async def test_records_read_already_are_not_judged_again() -> None:
    c, h = consumer({EVENTS: records([3, 4, 5, 6, 7])})
    c._read_offset[EVENTS] = 5
    await c._wait_next_records(1.0)
    assert [chunk for chunk, _ in h.judged] == [[5, 6, 7]]


async def test_a_rebalance_leaves_the_rest_of_the_fetch_unacked() -> None:
    c, h = consumer({EVENTS: records(range(2 * CHUNK))})

    async def rebalanced(judged: list[int]) -> None:
        c.app.consumer_generation_id += 1

    h.publish = rebalanced  # type: ignore[method-assign]
    await c._wait_next_records(1.0)
    assert len(h.judged) == 1
    assert c._acked[EVENTS] == list(range(CHUNK))


async def test_nothing_is_judged_before_the_handler_is_ready() -> None:
    c, h = consumer({EVENTS: records([0, 1])})
    h.is_ready = False
    await c._wait_next_records(1.0)
    assert h.judged == []
    assert c._acked[EVENTS] == []


async def test_missing_offsets_are_gaps_faust_commits_past() -> None:
    c, _ = consumer({EVENTS: records([10, 11, 15])})
    await c._wait_next_records(1.0)
    assert set(c._gap[EVENTS]) == {Interval(12, 16)}


async def test_a_commit_follows_every_n_acks() -> None:
    c, _ = consumer({EVENTS: records(range(2 * CHUNK + 500))}, every=CHUNK)
    await c._wait_next_records(1.0)
    assert c.commits == 2
    assert c._n_acked == 500


async def test_a_commit_waits_for_the_publish_under_way() -> None:
    c, h = consumer({EVENTS: records([0])})
    release = asyncio.Event()

    async def slow(judged: list[int]) -> None:
        await release.wait()

    h.publish = slow  # type: ignore[method-assign]
    fetching = asyncio.ensure_future(c._wait_next_records(1.0))
    await asyncio.sleep(0)
    settled = asyncio.ensure_future(c.publishes_settled())
    await asyncio.sleep(0)
    assert not settled.done()
    release.set()
    await asyncio.wait_for(settled, 5)
    await asyncio.wait_for(fetching, 5)
