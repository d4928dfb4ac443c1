"""A worker that starts before its broker waits for it (it exited instead, a bug the
reliability scenarios found), and the wait can be cancelled."""

from __future__ import annotations

import asyncio

import pytest

from anomalyd.worker.kafka.admin import free_port, wait_for_broker
from anomalyd.worker.kafka.broker import EmbeddedBroker


@pytest.mark.integration
async def test_waiting_for_a_broker_ends_when_it_comes_up() -> None:
    broker = EmbeddedBroker("127.0.0.1", free_port())
    waiting = asyncio.create_task(wait_for_broker([broker.bootstrap], first_delay=0.05))
    await asyncio.sleep(0.3)  # let it try, and fail, a few times
    assert not waiting.done(), "no broker yet: it keeps waiting instead of failing"
    async with broker:
        await asyncio.wait_for(waiting, timeout=15)


async def test_waiting_for_a_broker_can_be_cancelled() -> None:
    waiting = asyncio.create_task(wait_for_broker([f"127.0.0.1:{free_port()}"]))
    await asyncio.sleep(0.1)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
