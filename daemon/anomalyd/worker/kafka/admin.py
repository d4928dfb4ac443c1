"""Kafka as a client sees it: ports, reachability probes, waiting for a broker, and
creating topics. Any broker: the embedded one (`broker.py`) or a real cluster."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaClient
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

log = structlog.get_logger(__name__)

_CONNECT_TIMEOUT_S = 0.5
#: Pause between readiness probes; the broker is usually up in a few ms.
_POLL_INTERVAL_S = 0.05


class BrokerError(RuntimeError):
    """The embedded broker could not be found, started, reached or used."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def is_listening(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


async def accepts_tcp(bootstrap: str) -> bool:
    """Non-blocking `is_listening` over every host:port of a bootstrap string."""
    for host, port in _split_bootstrap(bootstrap):
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), _CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError):
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    return False


def _split_bootstrap(bootstrap: str) -> list[tuple[str, int]]:
    pairs = []
    for item in bootstrap.split(","):
        host, _, port = item.strip().rpartition(":")
        pairs.append((host, int(port)))
    return pairs


async def answers_metadata(bootstrap: str, topics: Collection[str] = ()) -> str | None:
    """None when the broker answered a metadata request naming every one of `topics`,
    else why not."""
    # A plain TCP probe first: aiokafka logs every refused bootstrap at ERROR.
    if not await accepts_tcp(bootstrap):
        return "connection refused"
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    try:
        await client.bootstrap()
        missing = sorted(set(topics) - client.cluster.topics()) if topics else []
    except (KafkaError, OSError, TimeoutError) as exc:
        return repr(exc)
    finally:
        await client.close()
    if missing:
        return f"topics missing: {', '.join(missing[:5])}"
    return None


async def wait_until_ready(bootstrap: str, deadline_s: float) -> None:
    """Poll until a broker at `bootstrap` answers a Kafka metadata request.

    `deadline_s` is how long to keep trying, in seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    while True:
        problem = await answers_metadata(bootstrap)
        if problem is None:
            return
        if loop.time() >= deadline:
            raise BrokerError(
                f"no Kafka broker answered at {bootstrap} within {deadline_s:g} s: {problem}"
            )
        await asyncio.sleep(_POLL_INTERVAL_S)


async def wait_for_broker(
    bootstrap: Sequence[str], *, first_delay: float = 0.5, max_delay: float = 10.0
) -> None:
    """Wait, as long as it takes, until a broker of `bootstrap` answers a metadata request,
    logging `broker_unavailable` while it does not. A worker that starts before its brokers
    (a cluster restart, a node that boots faster) waits for them instead of exiting; it is
    not ready meanwhile, and SIGTERM still stops it."""
    joined = ",".join(bootstrap)
    problem = await answers_metadata(joined)
    if problem is None:
        return
    loop = asyncio.get_running_loop()
    began, delay, attempts = loop.time(), first_delay, 1
    while problem is not None:
        log.warning("broker_unavailable", bootstrap=joined, problem=problem, attempts=attempts)
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay)
        attempts += 1
        problem = await answers_metadata(joined)
    log.info("broker_available", bootstrap=joined, waited_s=round(loop.time() - began, 1))


async def ensure_topics(
    bootstrap: str, topics: Mapping[str, int], config: Mapping[str, str] | None = None
) -> None:
    """Create each topic with its partition count (replication 1) and topic `config`
    (e.g. `{"cleanup.policy": "compact"}`); existing ones are kept.

    Raises the broker's KafkaError for any failure other than "already exists".
    """
    if not topics:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        settings = dict(config or {})
        requests = [
            NewTopic(name, partitions, 1, topic_configs=settings)
            for name, partitions in topics.items()
        ]
        response = await admin.create_topics(requests)
        existing = _check_created(response.topic_errors)
        if existing:
            await _warn_partition_mismatch(admin, {name: topics[name] for name in existing})
    finally:
        await admin.close()


def _check_created(topic_errors: Sequence[Sequence[Any]]) -> list[str]:
    """The topics that already existed; raises for any other error code."""
    existing = []
    for name, code, *rest in topic_errors:
        topic, error_code = str(name), int(code)
        if error_code == 0:
            log.info("topic_created", topic=topic)
            continue
        error_type = for_code(error_code)
        # aiokafka returns per-topic codes instead of raising; Tansu answers an
        # existing topic with 36 (TOPIC_ALREADY_EXISTS), like Kafka.
        if error_type is TopicAlreadyExistsError:
            existing.append(topic)
            continue
        message = rest[0] if rest else None
        raise error_type(f"creating topic {topic!r} failed: {message or error_type.__name__}")
    return existing


async def _warn_partition_mismatch(admin: AIOKafkaAdminClient, wanted: Mapping[str, int]) -> None:
    # A source topic with fewer partitions than its tables breaks Faust; say so early.
    for description in await admin.describe_topics(list(wanted)):
        topic = description["topic"]
        actual = len(description["partitions"])
        if actual != wanted[topic]:
            log.warning(
                "topic_partition_count_differs", topic=topic, wanted=wanted[topic], actual=actual
            )
        else:
            log.debug("topic_exists", topic=topic, partitions=actual)
