"""A Faust consumer extension: chosen topics are handled a fetched batch at a time.

Faust hands every record to its streams one at a time: a ConsumerMessage, a queue
put and get, an Event and two woken tasks per message, about 150 µs each on this
transport, 35 times what decoding the record costs. For the topics registered here
the consumer passes each partition's fetched records, as aiokafka returns them, to
one handler call, then acks them as a stream would have.

Everything else stays Faust's own:
- subscription and assignment: the topics are subscribed through the Conductor
  like any agent's, so they are co-partitioned and rebalanced with the others;
- rebalancing: a batch is not handled once flow stops or the consumer generation
  changes, and is not acked if the generation changes while it is handled (its new
  owner reads it again from the committed offset, exactly as Faust drops the rest
  of a fetch on a rebalance);
- commits: acked offsets (and offset gaps) go into Faust's own bookkeeping, and
  Faust commits them on its interval, after flushing the producer, so what a handler
  sent is durable before its input is committed.

Not kept: Faust's per-message sensors (its Monitor's message counters); the
daemon's own Prometheus metrics count the events.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

#: Handle one partition's fetched records, in offset order.
BatchHandler = Callable[[TP, Sequence[Any]], Awaitable[None]]


class BatchingConsumer:
    """Mixed into Faust's aiokafka Consumer (see `transport.py`)."""

    app: Any
    flow_active: bool
    _buffered_partitions: set[TP]

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:  # noqa: ASYNC109
        records, active = await super()._wait_next_records(timeout)  # type: ignore[misc]
        handlers = self.app.batch_handlers
        if not records or not handlers:
            return records, active
        rest = {}
        generation = self.app.consumer_generation_id
        for tp, batch in records.items():
            handler = handlers.get(tp.topic)
            if handler is None:
                rest[tp] = batch
            elif self._may_handle(tp, active, generation):
                unread = self._unread(tp, batch)
                if unread:
                    await handler(tp, unread)
                    if self.app.consumer_generation_id == generation:
                        await self._ack_batch(tp, unread)
        return rest, active

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

    async def _ack_batch(self, tp: TP, batch: Sequence[Any]) -> None:
        """What `Consumer.ack` does per message and the drain loop per offset gap."""
        consumer: Any = self
        if consumer.app.topics.acks_enabled_for(tp.topic):
            previous = consumer._read_offset[tp]
            for offset in (record.offset for record in batch):
                if previous and offset - previous > 1:  # a gap, e.g. compacted or aborted
                    await consumer._add_gap(tp, previous + 1, offset)
                previous = offset
            with ack_lock:
                committed = consumer._committed_offset[tp]
                index, acked = consumer._acked_index[tp], consumer._acked[tp]
                fresh = [
                    record.offset
                    for record in batch
                    if (committed is None or record.offset >= committed)
                    and record.offset not in index
                ]
                index.update(fresh)
                acked.extend(fresh)
                consumer._n_acked += len(fresh)
                notify(consumer._waiting_for_ack)
        consumer._read_offset[tp] = batch[-1].offset
        consumer.app.monitor.track_tp_end_offset(tp, consumer.highwater(tp))
        every = consumer._commit_every
        if every is not None and consumer._n_acked >= every:
            consumer._n_acked = 0
            await consumer.commit()
