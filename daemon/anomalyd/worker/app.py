"""The Faust app: topics, agents, the absence timer, the rebalance signals, and the
HTTP routes (`http/routes.py`) served through Faust's web server.

Composition: the wings meet here (`daemon/README.md`). Events are consumed a fetched
batch at a time (`detection/flow.py` through the `kafka/batching.py` consumer
extension); alerts by an agent that hands each to delivery (the read door); the
broker's acknowledgement of an alert this worker wrote goes to delivery too (the write
door). The decisions live below them.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import orjson
import structlog
from faust.types import TP
from faust.web import Request, Response, View

from anomalyd.config import AnomalydConfig
from anomalyd.decide.feedback import FeedbackRecord
from anomalyd.domain import Alert
from anomalyd.logs import logging_config
from anomalyd.notify.inhibit import Inhibitor
from anomalyd.notify.links import FeedbackLinks
from anomalyd.worker.delivery.cluster_alerts import (
    WORKER_HEADER,
    ClusterAlerts,
    ClusterIndex,
    WithHeld,
)
from anomalyd.worker.delivery.service import Delivery
from anomalyd.worker.detection.feedback_topic import apply_feedback, feedback_status
from anomalyd.worker.detection.flow import EventFlow
from anomalyd.worker.detection.runtime import Runtime
from anomalyd.worker.detection.snapshots import SnapshotStore
from anomalyd.worker.http.alerts import AlertsApi
from anomalyd.worker.http.amapi import AlertmanagerApi, Mutes
from anomalyd.worker.http.routes import routes
from anomalyd.worker.http.silences import SilenceApi
from anomalyd.worker.http.status import Owners
from anomalyd.worker.http.web import Answer, Route
from anomalyd.worker.kafka.admin import free_port
from anomalyd.worker.kafka.health import watch_broker
from anomalyd.worker.kafka.lag import consumer_lag
from anomalyd.worker.kafka.records import Sender, default_partition
from anomalyd.worker.kafka.transport import App
from anomalyd.worker.reload import ConfigReloader

_log = structlog.get_logger(__name__)

#: Events between two commits at most (each commit saves the changed streams first).
COMMIT_EVERY = 100_000


def by_stream_topic_name(config: AnomalydConfig) -> str:
    """The internal topic where events are re-keyed by stream, so one worker owns each stream."""
    return f"{config.app.id}-events-by-stream"


def worker_topics(config: AnomalydConfig) -> list[str]:
    """Every topic the worker reads or writes."""
    return [*config.topics.model_dump().values(), by_stream_topic_name(config)]


def state_topic_name(config: AnomalydConfig) -> str:
    """Per-stream detection state; partitioned like the by-stream topic (same key, same count)."""
    return f"{config.app.id}-state"


def build_app(
    config: AnomalydConfig,
    runtime: Runtime,
    delivery: Delivery,
    snapshots: SnapshotStore,
    *,
    data_dir: str,
    cluster: ClusterAlerts,
    reloads: ConfigReloader | None = None,
) -> App:
    kafka = config.kafka
    session_timeout = kafka.effective_session_timeout
    http_port = config.http.port or free_port()  # 0 picks a free port (Faust refuses 0)
    if config.http.port == 0:
        _log.info("http_port_picked", bind=config.http.bind, port=http_port)
    app = App(
        config.app.id,
        broker=[f"kafka://{server}" for server in kafka.bootstrap],
        fetch_max_wait_ms=max(1, int(kafka.effective_fetch_max_wait * 1000)),
        produced_topics=worker_topics(config),
        broker_session_timeout=session_timeout,
        broker_heartbeat_interval=max(0.5, session_timeout / 5),
        broker_request_timeout=max(30.0, session_timeout * 2),
        topic_partitions=kafka.partitions,
        topic_allow_declare=True,
        producer_linger=kafka.producer_linger,
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
        web_bind=config.http.bind,
        web_port=http_port,
        web_host=config.http.bind,
        datadir=data_dir,
        logging_config=logging_config(config.app.log_level),
        autodiscover=False,
        # Absence timers and delivery must not wait on a slow shutdown drain.
        stream_wait_empty=False,
        # Offsets are committed when the streams' state is saved (`_keep_state`): on
        # the snapshot interval, or after this many events if that comes first.
        broker_commit_interval=config.state.snapshot_interval,
        broker_commit_every=COMMIT_EVERY,
    )
    topics = config.topics
    events = app.topic(topics.events)
    by_stream = app.topic(by_stream_topic_name(config), internal=True)
    events_dlq = app.topic(topics.events_dlq)
    alerts = app.topic(topics.alerts)
    alerts_dlq = app.topic(topics.alerts_dlq)
    drift = app.topic(topics.drift)

    worker = worker_name(http_port)
    alert_headers = [(WORKER_HEADER, worker.encode())]  # the cluster view's stream owners
    runtime.attach(
        send_alert=_sender(alerts, written=delivery.written, headers=alert_headers),
        send_drift=_sender(drift),
    )
    delivery.attach(send_alert_dlq=_sender(alerts_dlq))

    flow = EventFlow(
        runtime,
        snapshots,
        partitions=kafka.partitions,
        events_partitions=lambda: app.consumer.topic_partitions(topics.events),
        generation=lambda: app.consumer_generation_id,
        highwater=lambda tp: app.consumer.highwater(TP(tp.topic, tp.partition)),
        partitioner=default_partition,
        send_dead=events_dlq.send,
        send_rekeyed=by_stream.send,
        max_request_size=app.conf.producer_max_request_size,
    )
    runtime.on_evict = snapshots.evict
    app.consume_in_batches(events, flow.events)
    app.consume_in_batches(by_stream, flow.by_stream)

    @app.agent(alerts, name="notify")
    async def notify(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            await delivery.deliver(message.value, message.partition, message.offset)

    _follow_alerts(app, delivery, alerts.get_topic_name())
    # Every worker's alerts: the alerts topic, and what waits in notification groups.
    view = WithHeld(cluster, lambda: delivery.notify_state.held.values())
    alerts_api = _feedback(app, config, runtime, delivery, snapshots, cluster, view)

    @app.task  # type: ignore[untyped-decorator]
    async def tick() -> None:
        # Not @app.timer: the interval is read each round, so a config reload changes it.
        while not app.should_stop:
            await app.sleep(runtime.config.alerting.absence_check_interval)
            if not app.should_stop:
                await runtime.tick()

    # The topics the worker reads and itself creates at start (Faust declares the ones it
    # consumes): gone, the broker restarted empty. (Topics it only writes may come later.)
    required = [
        topics.events,
        topics.alerts,
        by_stream_topic_name(config),
        state_topic_name(config),
    ]
    watch_broker(app, runtime, kafka.bootstrap, required, embedded=kafka.is_embedded)
    _keep_state(app, runtime, snapshots, by_stream.get_topic_name())
    silences = SilenceApi(delivery, config.http.api_token, delivery.clock)
    served = routes(
        runtime,
        silences=silences,
        alerts=alerts_api,
        alertmanager=_alertmanager(delivery, view, silences, worker),
        reloads=reloads,
        reload=reloads,
        owners=Owners(worker, cluster.owner),
        lag=lambda: consumer_lag(app.consumer),
        app_crashed=lambda: app.crashed,
    )
    for route in served:
        app.page(route.path)(_view(route))
    return app


def worker_name(http_port: int) -> str:
    """This worker as the API names it: its host name (a pod's name in Kubernetes) and
    HTTP port."""
    return f"{socket.gethostname()}:{http_port}"


def _sender(
    topic: Any,
    written: Callable[[bytes, int, int], object] | None = None,
    headers: list[tuple[str, bytes]] | None = None,
) -> Sender:
    """Send bytes to one of the app's topics, as the runtime and delivery expect, with
    `headers` added to each record's; once the broker has acknowledged a record,
    `written(value, partition, offset)`."""
    extra = list(headers or ())

    async def send(key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        callback = None if written is None else partial(_acknowledged, written, value)
        await topic.send(key=key, value=value, headers=[*headers, *extra], callback=callback)

    return send


def _acknowledged(written: Callable[[bytes, int, int], object], value: bytes, sent: Any) -> None:
    metadata = sent.result()  # Faust calls back only once the send has succeeded
    written(value, metadata.partition, metadata.offset)


def _follow_alerts(app: App, delivery: Delivery, alerts_topic: str) -> None:
    """Delivery follows the app's assignment of the alerts topic's partitions."""

    # mode's signal stubs do not accept an `async def` receiver; Faust awaits it.
    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, *args: Any, signal: Any = None, **kw: Any) -> None:
        assigned: set[TP] = args[0] if args else kw["assigned"]
        await delivery.assign({tp.partition for tp in assigned if tp.topic == alerts_topic})


def _keep_state(app: App, runtime: Runtime, snapshots: SnapshotStore, by_stream_name: str) -> None:
    """Streams' state moves with their partitions: written before offsets are committed,
    restored before their events flow on assignment, dropped when they are given up."""

    def partitions(tps: set[TP]) -> list[int]:
        return [tp.partition for tp in tps if tp.topic == by_stream_name]

    # mode's signal stubs do not accept an `async def` receiver; Faust awaits it all the same.
    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        revoked: set[TP] = args[0] if args else kwargs["revoked"]
        runtime.set_ready(False)
        snapshots.restored.clear()
        for tp in revoked:  # no longer ours: its lag is another worker's to report
            with contextlib.suppress(KeyError):
                runtime.metrics.consumer_lag.remove(tp.topic, str(tp.partition))
        # Faust drops the revoked partitions' uncommitted acks (it does not commit on a
        # revocation), so their next owner replays from the last commit: it must find
        # the state saved with that commit, not this worker's newer one.
        gone = runtime.streams_in(partitions(revoked))
        snapshots.discard(gone)
        runtime.forget_partitions(partitions(revoked))

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        assigned: set[TP] = args[0] if args else kwargs["assigned"]
        await snapshots.restore(partitions(assigned))
        snapshots.restored.set()

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def on_rebalanced(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        # Faust may report the rebalance done before the assignment handler has restored
        # the streams' state, and ready means the state is back. Wait in a task of its own,
        # so this handler never blocks whatever sends the assignment signal.
        pending_ready.add(asyncio.ensure_future(mark_ready()))

    pending_ready: set[asyncio.Future[None]] = set()

    async def mark_ready() -> None:
        await snapshots.restored.wait()
        runtime.set_ready(True)
        runtime.log_ready()
        pending_ready.clear()

    # Before offsets are committed, the state those offsets led to is written: a crash
    # then resumes from a commit onto exactly its state, and replays the rest. (No
    # writes between commits: state ahead of the committed offsets would be replayed
    # onto, and judge its events twice.)
    app.before_commit(snapshots.write)


def _feedback(
    app: App,
    config: AnomalydConfig,
    runtime: Runtime,
    delivery: Delivery,
    snapshots: SnapshotStore,
    cluster: ClusterAlerts,
    view: WithHeld,
) -> AlertsApi:
    """The feedback topic and its agent; the /api/alerts API that writes to the topic."""
    topic = app.topic(config.topics.feedback)

    async def send(record: FeedbackRecord) -> None:
        await topic.send(key=record.stream.encode(), value=orjson.dumps(record.to_json()))

    @app.agent(topic, name="feedback")
    async def learn(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            if not snapshots.restored.is_set():  # labels apply to the restored state
                await snapshots.restored.wait()
            changed = apply_feedback(runtime.engine, runtime.metrics, message.value)
            if changed is not None:
                partition = runtime.partition_of(changed)
                snapshots.mark(changed, message.partition if partition is None else partition)

    def lookup(fingerprint: str) -> Alert | None:
        """What this worker emitted, else what any worker holds in notification groups,
        else what any worker wrote (the cluster view)."""
        held = delivery.notify_state.latest(fingerprint)
        seen = cluster.get(fingerprint)
        return (
            runtime.alerts.get(fingerprint)
            or (held.alert if held is not None else None)
            or (seen.alert if seen is not None else None)
        )

    return AlertsApi(
        ClusterIndex(runtime.alerts, view),
        lookup=lookup,
        status=lambda stream: feedback_status(runtime.engine, stream),
        send=send,
        token=config.http.api_token,
        links=FeedbackLinks.from_config(config),
        clock=runtime.clock,
    )


def _alertmanager(
    delivery: Delivery, view: WithHeld, silences: SilenceApi, worker: str
) -> AlertmanagerApi:
    """Alertmanager's API over the cluster view, muted as delivery mutes: its silences,
    and the inhibition rules in force over the alerts held in groups."""

    def inhibitor() -> Inhibitor:
        held = delivery.notify_state.held
        return Inhibitor(delivery.config.inhibit_rules, lambda: [h.alert for h in held.values()])

    return AlertmanagerApi(
        view,
        silences,
        Mutes(delivery.silences, inhibitor),
        config=lambda: delivery.config,
        clock=delivery.clock,
        worker=worker,
        token=delivery.config.http.api_token,
    )


def _view(route: Route) -> type[View]:
    """A Faust view of a route: one method per handler (Faust serves only the methods a
    view defines itself)."""

    def method(handler: Callable[..., Awaitable[Answer]]) -> Callable[..., Awaitable[Response]]:
        async def call(view: View, request: Request, **params: str) -> Response:
            return _response(view, await handler(request, **params))

        return call

    methods = {name: method(handler) for name, handler in route.methods.items()}
    name = "".join(part.strip("{}").title() for part in route.path.split("/")) or "Root"
    return type(f"{name}View", (View,), methods)


def _response(view: View, answer: Answer) -> Response:
    headers = dict(answer.headers) or None
    if answer.kind == "html":
        return view.html(answer.body, status=answer.status, headers=headers)
    if answer.kind == "bytes":
        return view.bytes(
            answer.body, content_type=answer.content_type, status=answer.status, headers=headers
        )
    return view.json(answer.body, status=answer.status, headers=headers)


__all__ = ["build_app", "by_stream_topic_name"]
