"""Readiness follows the broker: a worker that cannot reach it judges nothing.

Faust notices a lost broker only through request timeouts and rebalances, which can
take a session timeout or longer, and a frozen broker may never cause one. So the
worker asks the broker for metadata every `INTERVAL` seconds (a fresh connection,
bounded by `TIMEOUT`): after `FAILURES` failed probes in a row it is not ready
(`/readyz` 503, `anomalyd_ready` 0), and the first answer makes it ready again (if
its partitions' state is back).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog

from anomalyd.worker.broker import answers_metadata
from anomalyd.worker.runtime import Runtime
from anomalyd.worker.transport import App

INTERVAL = 1.0
TIMEOUT = 2.0
FAILURES = 2

_log = structlog.get_logger(__name__)


def watch_broker(app: App, runtime: Runtime, bootstrap: Sequence[str]) -> None:
    joined = ",".join(bootstrap)

    @app.task  # type: ignore[untyped-decorator]
    async def probe_broker() -> None:
        failures = 0
        while not app.should_stop:
            problem = await _probe(joined)
            failures = 0 if problem is None else failures + 1
            reachable = failures < FAILURES
            if reachable != runtime.broker_reachable:
                log = _log.info if reachable else _log.warning
                log("broker_reachable" if reachable else "broker_unreachable", problem=problem)
                runtime.set_broker_reachable(reachable)
            await app.sleep(INTERVAL)


async def _probe(bootstrap: str) -> str | None:
    try:
        return await asyncio.wait_for(answers_metadata(bootstrap), TIMEOUT)
    except TimeoutError:
        return f"no metadata answer within {TIMEOUT:g} s"
