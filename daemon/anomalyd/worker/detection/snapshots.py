"""Per-stream engine state in Kafka, so a restart or a rebalance resumes instead of
relearning: a compacted topic keyed by stream, partitioned like the by-stream topic,
so a partition's state moves with its events.

- Write: before every commit of the events' offsets (and at shutdown, when the app
  commits last), the streams that changed since the last round, batched; then one
  marker record alone per partition written. The saved state is thus always the
  state at the committed offsets, which a crash or a rebalance replays from. On a
  revocation the given-up streams' newer changes are dropped, not written: Faust
  drops their uncommitted acks too. The marker keeps the partition's *last* batch a
  single record, because the embedded broker answers ListOffsets(latest) wrongly
  after a multi-record batch (`daemon/README.md`) and restoring reads up to that offset.
- Read: when partitions are assigned, before their events flow, each assigned
  partition is read from the beginning to its end; the engine resumes each stream
  from its newest snapshot.
- Format: versioned JSON of plain fields (`decide.state_codec`), read back as data
  into objects built from the current config: nothing in a record is run. A record
  the engine cannot read (another version, malformed, too large) is refused, the
  stream starts afresh, and the round logs it once (`state_snapshots_refused`). The
  pickles of version 1 are among those: never unpickled.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from typing import Protocol

import structlog

from anomalyd.decide import Engine
from anomalyd.decide.state_codec import PICKLE_FORMAT

_log = structlog.get_logger(__name__)

#: A key no stream can have (stream names start with a letter, digit or underscore).
MARKER = b"\x00marker"


class StateTopic(Protocol):
    """Where the snapshots are kept (`kafka.statetopic.StateTopic`)."""

    @property
    def writable(self) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, key: bytes, value: bytes | None, partition: int) -> None: ...

    async def flush(self) -> None: ...

    async def send_alone(self, key: bytes, value: bytes | None, partition: int) -> None: ...

    async def read(self, partitions: Sequence[int], skip: bytes) -> dict[bytes, bytes]: ...


class SnapshotStore:
    def __init__(self, engine: Engine, topic: StateTopic) -> None:
        self._engine = engine
        self._topic = topic
        self._dirty: dict[str, int] = {}  # stream -> partition
        self._evicted: set[str] = set()  # dirty streams whose snapshot is to be deleted
        self._writing = asyncio.Lock()
        #: Set once the assigned partitions' state is back; detection waits for it.
        self.restored = asyncio.Event()

    async def start(self) -> None:
        await self._topic.start()

    async def stop(self) -> None:
        """After the app stopped (its last commit wrote the state): close the topic."""
        await self._topic.stop()

    def discard(self, streams: Iterable[str]) -> None:
        """Streams given up: their changes since the last commit are not to be written."""
        for stream in streams:
            self._dirty.pop(stream, None)
            self._evicted.discard(stream)

    def evict(self, stream: str, partition: int) -> None:
        """The stream was evicted (`ingest.max_streams`): delete its snapshot in the next
        round, so a restart does not bring it back either."""
        self._dirty[stream] = partition
        self._evicted.add(stream)

    def mark(self, stream: str, partition: int) -> None:
        """The stream changed: write it in the next round."""
        self._dirty[stream] = partition

    async def write(self) -> int:
        """Write the dirty streams (before an offset commit); how many were written.
        Nothing once stopped: the app's last commit came before `stop`.

        One write at a time (Faust's commit timer, its count-based commits and a
        rebalance may commit at once): a caller returns once what was dirty when it
        asked is durable, even if another write had taken some of those streams."""
        async with self._writing:
            topic = self._topic
            if not topic.writable:
                return 0
            chosen = list(self._dirty)
            touched: set[int] = set()
            for stream in chosen:
                partition = self._dirty.pop(stream)
                blob = self._engine.snapshot(stream)
                evicted = stream in self._evicted
                self._evicted.discard(stream)
                if blob is None and not evicted:  # forgotten since (its partition was revoked)
                    continue
                await topic.send(stream.encode(), blob, partition)
                touched.add(partition)
            await topic.flush()
            for partition in sorted(touched):
                await topic.send_alone(MARKER, None, partition)
            if chosen:
                _log.debug(
                    "state_snapshot_written", streams=len(chosen), partitions=sorted(touched)
                )
            return len(chosen)

    async def restore(self, partitions: Iterable[int]) -> int:
        """Resume the engine's streams of these partitions from their newest snapshots."""
        wanted = sorted(set(partitions))
        if not wanted:
            return 0
        started = time.monotonic()
        latest = {
            key.decode(): blob for key, blob in (await self._topic.read(wanted, MARKER)).items()
        }
        refused = {
            stream: reason
            for stream, blob in latest.items()
            if (reason := self._engine.refusal(stream, blob)) is not None
        }
        restored = len(latest) - len(refused)
        if refused:
            _log_refused(refused, latest)
        _log.info(
            "state_restored",
            streams=restored,
            partitions=wanted,
            seconds=round(time.monotonic() - started, 3),
        )
        return restored


def _log_refused(refused: dict[str, str], blobs: dict[str, bytes]) -> None:
    """Once per round: those streams start afresh. One example, cut short: a record's
    text is not ours and could be long."""
    stream, reason = next(iter(refused.items()))
    _log.warning(
        "state_snapshots_refused",
        streams=len(refused),
        old_format=sum(blobs[s].startswith(PICKLE_FORMAT) for s in refused),
        example_stream=stream[:200],
        example_reason=reason[:200],
    )
