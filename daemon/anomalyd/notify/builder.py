"""The whole notify pipeline of a config, assembled in one place (as Alertmanager's
`notify.PipelineBuilder`): the receivers, the retry policy around delivery, the two
mute stages (inhibition, then silences) and the route tree.

A group's flush runs mute(inhibit) -> mute(silence) -> dedup -> retry(deliver) ->
record. Muting comes at flush time, as in Alertmanager, so silences and inhibitions
that start or end while alerts wait in their group apply.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

import aiohttp
import structlog

from anomalyd.clock import Clock
from anomalyd.config import AnomalydConfig
from anomalyd.config.routing import default_route
from anomalyd.domain import Alert
from anomalyd.metrics import Metrics
from anomalyd.notify.dedup import DedupStage, RecordStage
from anomalyd.notify.deliver import DeliverStage
from anomalyd.notify.inhibit import Inhibitor
from anomalyd.notify.mute import MuteStage
from anomalyd.notify.nflog import NotificationLog
from anomalyd.notify.notification import Notifier
from anomalyd.notify.receivers import build_notifiers
from anomalyd.notify.retry import DeadLetter, RetryPolicy, RetryStage
from anomalyd.notify.route import RouteNode, build_tree
from anomalyd.notify.silence import Silences
from anomalyd.notify.stage import MultiStage, Stage

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class NotifyPipeline:
    """What a config's notification side is made of: the route tree that groups alerts,
    and the pipeline each group's flush runs."""

    root: RouteNode
    pipeline: Stage


@dataclass(frozen=True, slots=True)
class NotifyParts:
    """What the pipeline works with that outlives a config: the state it reads and writes,
    and the services it calls."""

    session: aiohttp.ClientSession
    clock: Clock
    metrics: Metrics
    silences: Silences
    log: NotificationLog
    #: Every alert that may inhibit (all alerts held in groups).
    inhibition_sources: Callable[[], Iterable[Alert]]
    dead_letter: Callable[[DeadLetter], Awaitable[None]]


def build_notify(config: AnomalydConfig, parts: NotifyParts) -> NotifyPipeline | None:
    """The route tree and flush pipeline of `config`; None when there is no receiver.
    Raises if a receiver cannot be built."""
    route = config.route or default_route([r.name for r in config.receivers])
    parts.metrics.know_receivers(r.name for r in config.receivers)
    if route is None:
        _log.warning("no_receivers", detail="alerts are not delivered anywhere")
        return None
    notifiers = {n.name: n for n in build_notifiers(config, parts.session, parts.clock)}
    policy = RetryPolicy.from_config(config.delivery)

    def retry(deliver: Stage) -> RetryStage:
        return RetryStage(deliver, policy, parts.clock, parts.dead_letter, parts.metrics)

    inhibitor = Inhibitor(config.inhibit_rules, parts.inhibition_sources)
    pipeline = build_pipeline(inhibitor, parts.silences, parts.log, retry, notifiers, parts.metrics)
    return NotifyPipeline(build_tree(route), pipeline)


def build_pipeline(
    inhibitor: Inhibitor,
    silences: Silences,
    log: NotificationLog,
    retry: Callable[[Stage], RetryStage],
    notifiers: Mapping[str, Notifier],
    metrics: Metrics | None = None,
) -> MultiStage:
    """The flush pipeline: mute(inhibit) -> mute(silence) -> dedup -> retry(deliver) ->
    record; `metrics` counts the alerts each mute stage takes out, by reason."""
    muted = metrics.notifications_muted if metrics is not None else None
    return MultiStage(
        MuteStage(inhibitor, muted.labels("inhibited") if muted is not None else None),
        MuteStage(silences, muted.labels("silenced") if muted is not None else None),
        DedupStage(log),
        retry(DeliverStage(notifiers)),
        RecordStage(log),
    )
