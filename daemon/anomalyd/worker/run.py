"""Run the worker: one owner for the lifecycle of the broker (when embedded),
the runtime's resources and the Faust app. Faust's Worker handles SIGINT/SIGTERM;
the config reloader handles SIGHUP."""

from __future__ import annotations

import os
import signal
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog
from mode import Service

from anomalyd.clock import SystemClock
from anomalyd.config import AnomalydConfig
from anomalyd.logs import configure_logging
from anomalyd.metrics import Metrics
from anomalyd.worker.app import build_app, state_topic_name, worker_topics
from anomalyd.worker.delivery.cluster_alerts import ClusterAlerts
from anomalyd.worker.delivery.service import Delivery
from anomalyd.worker.detection.runtime import Runtime
from anomalyd.worker.detection.snapshots import SnapshotStore
from anomalyd.worker.kafka.admin import BrokerError, ensure_topics
from anomalyd.worker.kafka.broker import EmbeddedBroker
from anomalyd.worker.kafka.follow import TopicFollower
from anomalyd.worker.kafka.statetopic import StateTopic
from anomalyd.worker.reload import ConfigReloader
from anomalyd.worker.shutdown import ExitDeadline, Worker

_log = structlog.get_logger(__name__)


class EmbeddedBrokerService(Service):
    """Starts the embedded broker before the app connects, stops it after the app is gone."""

    def __init__(self, config: AnomalydConfig) -> None:
        super().__init__()
        self._config = config
        embedded = config.kafka.embedded
        self._broker = EmbeddedBroker(embedded.host, embedded.port, embedded.start_timeout)

    async def on_start(self) -> None:
        await self._broker.start()
        await ensure_topics(self._broker.bootstrap, topic_partitions(self._config))
        if self._broker.started_here:
            self.add_future(self._watch())

    async def _watch(self) -> None:
        """If the broker exits on its own, the worker exits too (within the shutdown
        deadline), so that its supervisor restarts both: a broker restarted under a
        running worker would be empty, its topics and the group's offsets gone."""
        code = await self._broker.wait()
        if self.should_stop:
            return
        _log.error(
            "embedded_broker_exited",
            returncode=code,
            detail="the worker exits too, so that its supervisor restarts both",
        )
        await self.crash(BrokerError(f"the embedded broker exited with code {code}"))

    async def on_stop(self) -> None:
        await self._broker.stop()


class Lifecycle(Protocol):
    """A wing's service: started before the app connects, stopped after it is gone."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Hosted(Service):
    """A wing's service run by Faust's worker like one of its own (the wings know no mode)."""

    def __init__(
        self, inner: Lifecycle, started: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        super().__init__()
        self._inner = inner
        self._when_started = started

    @property
    def label(self) -> str:
        return type(self._inner).__name__

    async def on_start(self) -> None:
        await self._inner.start()

    async def on_started(self) -> None:
        if self._when_started is not None:
            await self._when_started()

    async def on_stop(self) -> None:
        await self._inner.stop()


def topic_partitions(config: AnomalydConfig) -> dict[str, int]:
    """Every topic the worker reads or writes, with the partition count it needs; not the
    delivery state topics, which the state log creates as it needs them (compacted, one
    partition): created here first, they would be neither."""
    topics = config.topics
    state_log = {topics.silences, topics.notify_log, topics.alert_state}
    names = [name for name in worker_topics(config) if name not in state_log]
    return dict.fromkeys(names, config.kafka.partitions)


def data_dir_problem(path: str) -> str | None:
    """Why the worker cannot use `path` as its data directory (creating it if needed), or
    None. Nothing is written there: a full disk does not stop the worker, whose state
    lives in Kafka."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        return error.strerror or repr(error)
    if not os.access(path, os.W_OK | os.X_OK):
        return "not writable"
    return None


def run_worker(config: AnomalydConfig, config_path: str | os.PathLike[str] | None = None) -> int:
    """Run until SIGINT/SIGTERM; returns the process exit code. With `config_path` (the
    file `config` was loaded from), SIGHUP and changes of the file reload it."""
    logging_config = configure_logging(config.app.log_level)
    problem = data_dir_problem(config.app.data_dir)
    if problem is not None:
        # Faust keeps its table metadata there and fails on it deep inside its start-up,
        # after the broker and the services started: say it first, plainly.
        _log.error(
            "data_dir_unusable",
            path=config.app.data_dir,
            problem=problem,
            detail="app.data_dir must be a directory the worker can create and write",
        )
        return 1
    clock, metrics = SystemClock(), Metrics()
    runtime = Runtime(config, clock, metrics)
    delivery = Delivery(config, clock, metrics)
    state_topic = StateTopic(
        config.kafka.bootstrap, state_topic_name(config), config.kafka.partitions
    )
    # The engine's and the drift monitor's state of a stream: one snapshot.
    snapshots = SnapshotStore(runtime.pipeline, state_topic)
    reloader = None
    if config_path is not None:
        reloader = ConfigReloader(
            config_path, config, runtime, delivery, clock, metrics, settle=config.app.reload_settle
        )
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the reloader handles it
    cluster = ClusterAlerts()
    follower = TopicFollower(config.kafka.bootstrap, config.topics.alerts, cluster.apply_record)
    app = build_app(
        config,
        runtime,
        delivery,
        snapshots,
        data_dir=config.app.data_dir,
        cluster=cluster,
        reloads=reloader,
    )
    services: list[Service] = [
        Hosted(delivery, delivery.schedule),
        Hosted(snapshots),
        follower,
    ]
    if reloader is not None:
        services.append(reloader)
    if config.kafka.is_embedded:
        services.insert(0, EmbeddedBrokerService(config))
    _log.info(
        "worker_starting",
        app_id=config.app.id,
        brokers=config.kafka.bootstrap,
        embedded=config.kafka.is_embedded,
        http=f"{config.http.bind}:{config.http.port}",
        rules=len(config.rules),
        receivers=[r.name for r in config.receivers],
    )
    worker = Worker(
        app,
        *services,
        deadline=ExitDeadline(),
        on_crash=runtime.set_crashed,
        quiet=True,
        loglevel=config.app.log_level,
        logging_config=logging_config,
    )
    try:
        worker.execute_from_commandline()
    except SystemExit as exit_:  # how Faust's worker ends, on a signal or an error
        return int(exit_.code or 0)
