"""The consumer's lag per assigned partition, for `/api/status`: highwater minus fetch
position, read from Faust's consumer without waiting on a partition in motion."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import structlog
from aiokafka.errors import IllegalStateError
from faust.exceptions import ConsumerNotStarted
from faust.types import TP

_log = structlog.get_logger(__name__)

#: A partition whose position is not known yet is reported without waiting for it.
_POSITION_TIMEOUT_S = 0.5


class Consumer(Protocol):
    """What the lag is read from (Faust's consumer)."""

    def assignment(self) -> set[TP]: ...

    def highwater(self, tp: TP) -> int: ...

    async def position(self, tp: TP) -> int | None: ...


async def consumer_lag(consumer: Consumer) -> list[dict[str, Any]] | None:
    """Per assigned partition: highwater - fetch position. None if the consumer is not
    running; a partition moved away meanwhile (a rebalance) shows no figures."""
    try:
        assigned = sorted(consumer.assignment())
    except ConsumerNotStarted:
        return None
    return [await _partition_lag(consumer, tp) for tp in assigned]


async def _partition_lag(consumer: Consumer, tp: TP) -> dict[str, Any]:
    row: dict[str, Any] = {"topic": tp.topic, "partition": tp.partition}
    try:
        highwater = consumer.highwater(tp)
        position = await asyncio.wait_for(consumer.position(tp), _POSITION_TIMEOUT_S)
    except (IllegalStateError, AssertionError, TimeoutError) as error:
        # aiokafka asserts on a partition no longer assigned; the rest is a race too.
        _log.debug(
            "partition_lag_unknown", topic=tp.topic, partition=tp.partition, detail=repr(error)
        )
        return {**row, "highwater": None, "position": None, "lag": None}
    lag = highwater - position if highwater is not None and position is not None else None
    return {**row, "highwater": highwater, "position": position, "lag": lag}
