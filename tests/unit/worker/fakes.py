"""In-memory stand-ins for the worker's Kafka side, as the wings see it through their
protocols (the pattern of `test_delivery_state.py`'s state store)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class MemoryStateTopic:
    """`detection.snapshots.StateTopic` in memory: each partition's records in order, and
    the produce requests they went in (a `send` waits for `flush`; `send_alone` is a
    request of its own)."""

    partitions: dict[int, list[tuple[bytes, bytes | None]]] = field(default_factory=dict)
    requests: list[list[tuple[int, bytes, bytes | None]]] = field(default_factory=list)
    started: bool = False
    _queued: list[tuple[int, bytes, bytes | None]] = field(default_factory=list)

    @property
    def writable(self) -> bool:
        return self.started

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def send(self, key: bytes, value: bytes | None, partition: int) -> None:
        self._queued.append((partition, key, value))

    async def flush(self) -> None:
        if self._queued:
            self._write(self._queued)
            self._queued = []

    async def send_alone(self, key: bytes, value: bytes | None, partition: int) -> None:
        self._write([(partition, key, value)])

    async def read(self, partitions: Sequence[int], skip: bytes) -> dict[bytes, bytes]:
        latest: dict[bytes, bytes] = {}
        for partition in partitions:
            for key, value in self.partitions.get(partition, []):
                if key == skip:
                    continue
                if value is None:
                    latest.pop(key, None)
                else:
                    latest[key] = value
        return latest

    def _write(self, records: list[tuple[int, bytes, bytes | None]]) -> None:
        self.requests.append(list(records))
        for partition, key, value in records:
            self.partitions.setdefault(partition, []).append((key, value))
