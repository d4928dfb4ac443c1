"""The notification log (Alertmanager's nflog): per receiver and group, which alerts the
last notification carried as firing and as resolved, and when. Dedup reads it; the
record stage writes it. `persist` makes each write durable before it counts (the worker
writes it to a compacted topic; every worker applies what it reads back), so a restart
neither pages again nor forgets to resolve."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: Make one entry durable (None: the group's entry is gone). Raises if it cannot.
Persist = Callable[[str, "LogEntry | None"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class LogEntry:
    """`firing`: the alert episodes (`group.episode_key`) the receiver believes are firing
    (sent as firing and not resolved since, muted ones included); `resolved`: the latest
    episode of each alert the receiver was told resolved, unless told of a later one since.
    An entry outlives its group (`idle_before` says when it may go), so an episode replayed
    after a crash is known as told."""

    receiver: str
    group_key: str
    firing: frozenset[str]
    resolved: frozenset[str]
    timestamp: float

    @property
    def key(self) -> str:
        return log_key(self.receiver, self.group_key)

    def to_json(self) -> dict[str, Any]:
        return {
            "receiver": self.receiver,
            "groupKey": self.group_key,
            "firing": sorted(self.firing),
            "resolved": sorted(self.resolved),
            "timestamp": self.timestamp,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LogEntry:
        return cls(
            receiver=str(data["receiver"]),
            group_key=str(data["groupKey"]),
            firing=frozenset(str(fp) for fp in data["firing"]),
            resolved=frozenset(str(fp) for fp in data["resolved"]),
            timestamp=float(data["timestamp"]),
        )


def log_key(receiver: str, group_key: str) -> str:
    """Receiver names cannot hold ':', so the first ':' ends the name."""
    return f"{receiver}:{group_key}"


async def _in_memory(key: str, entry: LogEntry | None) -> None:
    return None


class NotificationLog:
    def __init__(self, persist: Persist = _in_memory) -> None:
        self._persist = persist
        self._entries: dict[str, LogEntry] = {}

    def get(self, receiver: str, group_key: str) -> LogEntry | None:
        return self._entries.get(log_key(receiver, group_key))

    async def record(self, entry: LogEntry) -> None:
        await self._persist(entry.key, entry)
        self._entries[entry.key] = entry

    async def forget(self, receiver: str, group_key: str) -> None:
        key = log_key(receiver, group_key)
        entry = self._entries.get(key)
        if entry is None:
            return
        await self._persist(key, None)
        if self._entries.get(key) is entry:  # unless a new notification was recorded meanwhile
            del self._entries[key]

    def idle_before(self, before: float) -> list[LogEntry]:
        """The entries with nothing firing, last written before `before`."""
        return [e for e in self._entries.values() if not e.firing and e.timestamp < before]

    def apply(self, key: str, entry: LogEntry | None) -> None:
        """Take an entry read back from storage (written here or by another worker)."""
        if entry is None:
            self._entries.pop(key, None)
        else:
            self._entries[key] = entry

    def __len__(self) -> int:
        return len(self._entries)
