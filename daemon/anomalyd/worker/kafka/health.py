"""Readiness follows the broker: a worker that cannot reach it judges nothing.

Faust notices a lost broker only through request timeouts and rebalances, which can
take a session timeout or longer, and a frozen broker may never cause one. So the
worker asks the broker for metadata every `INTERVAL` seconds (a fresh connection,
bounded by `TIMEOUT`): after `FAILURES` failed probes in a row it is not ready
(`/readyz` 503, `anomalyd_ready` 0), and the first answer makes it ready again (if
its partitions' state is back).

An answer that lacks one of the worker's topics is a failed probe too: an embedded
broker restarted empty (it keeps nothing) answers, but the worker would judge and
notify nothing. In embedded mode the worker then exits after `MISSING_TOPICS_EXIT`
such probes in a row, so that its supervisor restarts it and it creates its topics
again; on a real cluster it stays not ready until they are back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from typing import Protocol

import structlog

from anomalyd.worker.kafka.admin import answers_metadata
from anomalyd.worker.kafka.transport import App

INTERVAL = 1.0
TIMEOUT = 2.0
FAILURES = 2
#: Probes in a row without the worker's topics before an embedded-mode worker exits.
MISSING_TOPICS_EXIT = 5


class TopicsMissing(RuntimeError):
    """The broker answers, without the worker's topics (an embedded broker restarted)."""


_log = structlog.get_logger(__name__)


class Readiness(Protocol):
    """What the probe reports to (`detection.runtime.Runtime`)."""

    @property
    def broker_reachable(self) -> bool: ...

    def set_broker_reachable(self, reachable: bool) -> None: ...


def watch_broker(
    app: App,
    runtime: Readiness,
    bootstrap: Sequence[str],
    topics: Collection[str] = (),
    *,
    embedded: bool = False,
) -> None:
    joined = ",".join(bootstrap)

    @app.task  # type: ignore[untyped-decorator]
    async def probe_broker() -> None:
        failures = missing = 0
        while not app.should_stop:
            problem = await _probe(joined, topics)
            failures = 0 if problem is None else failures + 1
            missing = missing + 1 if _topics_missing(problem) else 0
            if missing == 1:
                _log.warning("broker_topics_missing", problem=problem)
            reachable = failures < FAILURES
            if reachable != runtime.broker_reachable:
                log = _log.info if reachable else _log.warning
                log("broker_reachable" if reachable else "broker_unreachable", problem=problem)
                runtime.set_broker_reachable(reachable)
            if embedded and missing >= MISSING_TOPICS_EXIT:
                _log.error(
                    "broker_topics_lost",
                    problem=problem,
                    detail="the embedded broker lost the worker's topics: exiting, so that "
                    "a restart creates them again",
                )
                await app.crash(TopicsMissing(str(problem)))
                return
            await app.sleep(INTERVAL)


def _topics_missing(problem: str | None) -> bool:
    return problem is not None and problem.startswith("topics missing")


async def _probe(bootstrap: str, topics: Collection[str]) -> str | None:
    try:
        return await asyncio.wait_for(answers_metadata(bootstrap, topics), TIMEOUT)
    except TimeoutError:
        return f"no metadata answer within {TIMEOUT:g} s"
