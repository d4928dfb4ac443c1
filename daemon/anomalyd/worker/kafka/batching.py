"""A Faust consumer extension: chosen topics are handled a fetched batch at a time.

Faust hands every record to its streams one at a time: a ConsumerMessage, a queue
put and get, an Event and two woken tasks per message, about 150 µs each on this
transport, 35 times what decoding the record costs. For the topics registered here
the consumer hands each partition's fetched records, as aiokafka returns them, to a
`BatchHandler`, a chunk at a time:

1. `ready(tp)`: may await (the daemon waits for the streams' state to be restored);
2. `judge(tp, chunk)`: synchronous; then the chunk is acked *in the same step*, with
   no await in between, so the state a handler keeps and the acked offsets always
   move together (a commit, a rebalance or a snapshot never sees one without the
   other);
3. `publish(judged)`: awaits the sends the chunk produced. A commit waits until no
   publish is under way (`publishes_settled`), and Faust flushes the producer before
   it commits: what a chunk sent is durable before its offsets are committed.

Between chunks the consumer yields to the event loop, so HTTP, timers and a
rebalance wait for a chunk (~1,000 records), not a whole fetch (tens of thousands
when a backlog is read).

Everything else stays Faust's own: subscription and assignment (the topics are
subscribed through the Conductor like any agent's, so they are co-partitioned and
rebalanced with the others); rebalancing (nothing is judged once flow stops or the
consumer generation changes; the rest of the fetch stays unacked for the
partition's next owner, as Faust drops the rest of a fetch on a rebalance); commits
(acked offsets and offset gaps go into Faust's own bookkeeping, committed on its
interval). Not kept: Faust's per-message sensors (its Monitor's message counters);
the daemon's own Prometheus metrics count the events.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
from collections.abc import Sequence
from typing import Any, Protocol

from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

#: Records judged in one step, between two yields to the event loop (~20 ms of work).
CHUNK = 1000

#: The faust-streaming this module was written against: it acks on the consumer's private
#: bookkeeping (`_read_offset`, `_acked_index`, `_gap`, `_n_acked`), which another version
#: may keep otherwise, and nothing but this check would say so.
FAUST_VERSION = "0.15.3"


class FaustVersionError(ImportError):
    """The installed faust-streaming is not the one the batching consumer was written for."""


def check_faust_version(installed: str) -> None:
    """Raise FaustVersionError unless `installed` is FAUST_VERSION."""
    if installed != FAUST_VERSION:
        raise FaustVersionError(
            f"anomalyd's batching consumer (worker/kafka/batching.py) acks on the private "
            f"bookkeeping of faust-streaming {FAUST_VERSION}, but {installed} is installed: "
            f"install faust-streaming=={FAUST_VERSION} (as pyproject.toml pins it), or check "
            "the consumer against the new version before moving the pin"
        )


check_faust_version(importlib.metadata.version("faust-streaming"))


class BatchHandler(Protocol):
    async def ready(self, tp: TP) -> bool:
        """Awaited before a partition's batch; False leaves the batch unhandled."""

    def judge(self, tp: TP, records: Sequence[Any]) -> Any:
        """Handle records of one partition, in offset order, without awaiting."""

    async def publish(self, judged: Any) -> None:
        """Send what `judge` returned."""


class BatchingConsumer:
    """Mixed into Faust's aiokafka Consumer (see `transport.py`)."""

    app: Any
    flow_active: bool
    _buffered_partitions: set[TP]
    _publishing: int = 0
    _settled: asyncio.Event | None = None

    async def publishes_settled(self) -> None:
        """Return once no chunk's sends are under way (a commit waits for this)."""
        while self._publishing:
            await self._settled_event().wait()

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:  # noqa: ASYNC109
        records, active = await super()._wait_next_records(timeout)  # type: ignore[misc]
        handlers: dict[str, BatchHandler] = self.app.batch_handlers
        if not records or not handlers:
            return records, active
        rest = {}
        generation = self.app.consumer_generation_id
        for tp, batch in records.items():
            handler = handlers.get(tp.topic)
            if handler is None:
                rest[tp] = batch
            else:
                await self._handle(tp, self._unread(tp, batch), handler, active, generation)
        return rest, active

    async def _handle(
        self,
        tp: TP,
        batch: Sequence[Any],
        handler: BatchHandler,
        active: set[TP] | None,
        generation: int,
    ) -> None:
        if not batch or not self._may_handle(tp, active, generation):
            return
        if not await handler.ready(tp):
            return
        for start in range(0, len(batch), CHUNK):
            if not self._may_handle(tp, active, generation):
                return  # a rebalance came: the rest is for the partition's owner to read
            chunk = batch[start : start + CHUNK]
            judged = handler.judge(tp, chunk)
            self._ack(tp, chunk)
            await self._publish(handler, judged)
            await self._maybe_commit()
            await asyncio.sleep(0)

    async def _publish(self, handler: BatchHandler, judged: Any) -> None:
        self._publishing += 1
        self._settled_event().clear()
        try:
            await handler.publish(judged)
        finally:
            self._publishing -= 1
            if not self._publishing:
                self._settled_event().set()

    def _settled_event(self) -> asyncio.Event:
        if self._settled is None:
            self._settled = asyncio.Event()
            self._settled.set()
        return self._settled

    def _may_handle(self, tp: TP, active: set[TP] | None, generation: int) -> bool:
        """Faust's own test in `Consumer.getmany`, before it yields a record."""
        if not self.flow_active or self.app.consumer_generation_id != generation:
            return False
        return active is None or tp in active or tp in self._buffered_partitions

    def _unread(self, tp: TP, batch: Sequence[Any]) -> Sequence[Any]:
        """Drop what was read already (Faust's drain loop does the same per message)."""
        read: int | None = self._read_offset[tp]  # type: ignore[attr-defined]
        if read is None or batch[0].offset >= read:
            return batch
        return [record for record in batch if record.offset >= read]

    def _ack(self, tp: TP, chunk: Sequence[Any]) -> None:
        """What `Consumer.ack` does per message and the drain loop per offset gap,
        synchronously (so that it is one step with the judging)."""
        consumer: Any = self
        if consumer.app.topics.acks_enabled_for(tp.topic):
            with ack_lock:
                self._add_gaps(tp, chunk)
                committed = consumer._committed_offset[tp]
                index, acked = consumer._acked_index[tp], consumer._acked[tp]
                fresh = [
                    record.offset
                    for record in chunk
                    if (committed is None or record.offset >= committed)
                    and record.offset not in index
                ]
                index.update(fresh)
                acked.extend(fresh)
                consumer._n_acked += len(fresh)
                notify(consumer._waiting_for_ack)
        consumer._read_offset[tp] = chunk[-1].offset
        consumer.app.monitor.track_tp_end_offset(tp, consumer.highwater(tp))

    def _add_gaps(self, tp: TP, chunk: Sequence[Any]) -> None:
        """Offsets missing between the records (compacted away, transaction markers) are
        gaps, which Faust commits past (its `_add_gap`, without the await)."""
        consumer: Any = self
        previous = consumer._read_offset[tp]
        committed = consumer._committed_offset[tp]
        for offset in (record.offset for record in chunk):
            if previous and offset - previous > 1:
                start = previous + 1 if committed is None else max(previous + 1, committed + 1)
                if start <= offset:
                    consumer._gap[tp].addi(start, offset + 1)
                    consumer._gap[tp].merge_overlaps()
            previous = offset

    async def _maybe_commit(self) -> None:
        consumer: Any = self
        every = consumer._commit_every
        if every is not None and consumer._n_acked >= every:
            consumer._n_acked = 0
            await consumer.commit()
