"""SnapshotStore over an in-memory state topic: what a round writes (the changed streams,
then one marker alone per partition touched), what it leaves out (given-up streams), how
an evicted stream's snapshot is deleted, and how a restore resumes the streams."""

from __future__ import annotations

from fakes import MemoryStateTopic

from anomalyd.clock import ManualClock
from anomalyd.config import parse_config
from anomalyd.domain import VALUE_FIELD, Event
from anomalyd.metrics import Metrics
from anomalyd.pipeline import Outcome
from anomalyd.worker.detection.runtime import Runtime
from anomalyd.worker.detection.snapshots import MARKER, SnapshotStore

T0 = 1_700_000_000.0
CONFIG = """
model: {mode: rules}
drift: {enabled: false}
rules: [{name: High, type: above, threshold: 500, severity: critical}]
"""


def runtime() -> Runtime:
    return Runtime(parse_config(CONFIG), ManualClock(T0), Metrics())


def judge(runtime: Runtime, stream: str, value: float, at: float, partition: int = 0) -> None:
    runtime.score(Event(stream, at, {VALUE_FIELD: value}), partition, at, at, Outcome())


async def started(runtime: Runtime, topic: MemoryStateTopic) -> SnapshotStore:
    store = SnapshotStore(runtime.engine, topic)
    await store.start()
    return store


async def test_a_round_writes_the_changed_streams_then_one_marker_alone_per_partition() -> None:
    rt, topic = runtime(), MemoryStateTopic()
    store = await started(rt, topic)
    for stream, partition in [("a", 0), ("b", 1), ("c", 1)]:
        judge(rt, stream, 1, T0, partition)
        store.mark(stream, partition)

    assert await store.write() == 3

    batch, *markers = topic.requests
    assert sorted((p, k) for p, k, _ in batch) == [(0, b"a"), (1, b"b"), (1, b"c")]
    assert all(value is not None for _, _, value in batch)
    # The embedded broker answers ListOffsets wrongly after a multi-record batch: the last
    # request of each partition is one marker record.
    assert markers == [[(0, MARKER, None)], [(1, MARKER, None)]]
    assert await store.write() == 0  # nothing changed since
    assert len(topic.requests) == 3


async def test_given_up_streams_are_not_written() -> None:
    rt, topic = runtime(), MemoryStateTopic()
    store = await started(rt, topic)
    judge(rt, "kept", 1, T0)
    judge(rt, "gone", 1, T0)
    store.mark("kept", 0)
    store.mark("gone", 0)
    store.discard(["gone"])
    await store.write()
    assert [key for _, key, _ in topic.requests[0]] == [b"kept"]


async def test_an_evicted_stream_has_its_snapshot_deleted() -> None:
    rt, topic = runtime(), MemoryStateTopic()
    store = await started(rt, topic)
    judge(rt, "old", 1, T0)
    store.mark("old", 0)
    await store.write()
    rt.pipeline.forget(["old"])
    store.evict("old", 0)
    await store.write()
    assert topic.partitions[0][-2] == (b"old", None)  # then the marker
    assert await SnapshotStore(runtime().engine, topic).restore([0]) == 0


async def test_restore_resumes_the_streams_of_the_partitions_asked() -> None:
    rt, topic = runtime(), MemoryStateTopic()
    store = await started(rt, topic)
    for i in range(5):
        judge(rt, "s", 10 + i, T0 + i)
    judge(rt, "elsewhere", 1, T0, partition=1)
    store.mark("s", 0)
    store.mark("elsewhere", 1)
    await store.write()

    fresh = runtime()
    restored = await SnapshotStore(fresh.engine, topic).restore([0, 0])
    assert restored == 1
    assert sorted(fresh.engine.streams()) == ["s"]
    assert fresh.engine.snapshot("s") == rt.engine.snapshot("s")


async def test_nothing_is_written_once_stopped() -> None:
    rt, topic = runtime(), MemoryStateTopic()
    store = await started(rt, topic)
    judge(rt, "s", 1, T0)
    store.mark("s", 0)
    await store.stop()
    assert await store.write() == 0
    assert topic.requests == []
