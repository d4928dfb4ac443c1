"""Kafka records as the wings see them: how one is sent, and where Kafka's default
partitioner puts a key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiokafka.partitioner import murmur2

#: Send bytes to a topic: (key, value, headers).
Sender = Callable[[bytes, bytes, list[tuple[str, bytes]]], Awaitable[None]]


def default_partition(key: bytes, partitions: int) -> int:
    """The partition a producer with Kafka's default partitioner (murmur2, as the Java
    client and aiokafka) writes `key` to, among `partitions`."""
    return int((murmur2(key) & 0x7FFFFFFF) % partitions)
