"""Shared fixtures: the embedded broker (one per session) and hypothesis profiles."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, settings

from anomalyd.worker.kafka.admin import free_port
from anomalyd.worker.kafka.broker import EmbeddedBroker

# CI machines are new and slow on the first run; a database in the repo is noise.
settings.register_profile(
    "ci", database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    return ("127.0.0.1", 0)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def broker() -> AsyncIterator[EmbeddedBroker]:
    """One embedded broker for the session; each test uses its own topics and group."""
    async with EmbeddedBroker("127.0.0.1", free_port()) as running:
        yield running
