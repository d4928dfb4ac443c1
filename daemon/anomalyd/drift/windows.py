"""Tumbling windows aligned to event time, with a grace period for late events.

A window `[start, start + size)` starts at a multiple of `size` since the
epoch, so every stream's windows line up (05:00, 05:05, ...). It stays open
until a watermark reaches `end + grace`; events for it that arrive later are
*late*: the caller counts them and leaves the closed window's statistics alone.

Windows close only when told (`close_due(watermark)`): the owner decides what
the watermark is (a stream's event time, or that plus idle processing time so a
silent stream's window still closes).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


def window_start(ts: float, size: float) -> float:
    return math.floor(ts / size) * size


class OpenWindows(Generic[T]):
    """One stream's open windows, by start time; at most `grace / size + 2` of them
    are open at once, since a watermark past a window's end + grace closes it."""

    __slots__ = ("_first_end", "_open", "closed_until", "grace", "size")

    def __init__(self, size: float, grace: float) -> None:
        self.size = size
        self.grace = grace
        self._open: dict[float, T] = {}
        #: Every window ending at or before this is closed; its events are late.
        self.closed_until = -math.inf
        #: The end of the oldest open window (inf if none): what every event is checked
        #: against, without looking at the windows.
        self._first_end = math.inf

    def __len__(self) -> int:
        return len(self._open)

    def items(self) -> list[tuple[float, T]]:
        return sorted(self._open.items())

    def put(self, start: float, window: T) -> None:
        """Reopen a window (from a snapshot)."""
        self._open[start] = window
        self._first_end = min(self._first_end, start + self.size)

    def get(self, ts: float, make: Callable[[float], T]) -> T | None:
        """The open window holding `ts` (made with `make(start)` if new), or None if late."""
        start = window_start(ts, self.size)
        window = self._open.get(start)
        if window is not None:
            return window
        if start + self.size <= self.closed_until:
            return None
        window = self._open[start] = make(start)
        self._first_end = min(self._first_end, start + self.size)
        return window

    def close_due(self, watermark: float) -> list[tuple[float, T]]:
        """Close, oldest first, every window whose end + grace the watermark has reached."""
        limit = watermark - self.grace
        if limit <= self.closed_until:
            return []
        self.closed_until = limit
        if limit < self._first_end:  # what nearly every event finds
            return []
        due = sorted(start for start in self._open if start + self.size <= limit)
        closed = [(start, self._open.pop(start)) for start in due]
        self._first_end = min(self._open, default=math.inf) + self.size
        return closed

    def close_all(self) -> list[tuple[float, T]]:
        """Close every open window (end of input): later events for them are late."""
        if not self._open:
            return []
        return self.close_due(max(self._open) + self.size + self.grace)
