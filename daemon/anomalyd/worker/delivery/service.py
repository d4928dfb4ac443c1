"""Delivery in the worker: read alerts from the alerts topic into the notify dispatcher,
flush its groups on time, follow the partitions this worker is given, and keep the
state where a restart and the other workers find it (`state.py`, on compacted
topics through `kafka/statelog.py`). Owns the HTTP client session and the state topics.

The alerts topic is keyed by alertname (`Runtime.emit`), so all alerts of a group whose
`group_by` includes `alertname` are read by one worker. Each partition's alerts are a
shard of the dispatcher: when a partition moves, the old owner lets go of its alerts and
the new one restores them from the state topic, then skips the records it replays that
its groups already hold.

Two doors lead in (`daemon/README.md`). An alert this worker writes to a partition it
reads is taken into its groups as soon as the broker acknowledges the write, if every
alert before it in that partition has been taken: the alert is durable already, and
reading it back would cost a broker round trip (a fetch wait and more) before a
`group_wait: 0` notification goes out.
Reading it back later is a replay, skipped by its offset.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
import structlog

from anomalyd.clock import Clock
from anomalyd.config import AnomalydConfig
from anomalyd.config.routing import Silence
from anomalyd.domain import Alert
from anomalyd.metrics import Metrics
from anomalyd.notify import DeadLetter
from anomalyd.notify.builder import NotifyParts, NotifyPipeline, build_notify
from anomalyd.notify.dispatch import Dispatcher
from anomalyd.notify.group import Held
from anomalyd.notify.silence import Silences
from anomalyd.worker.delivery.state import NotifyState, StateStore
from anomalyd.worker.kafka.records import Sender
from anomalyd.worker.kafka.statelog import WRITE_ERRORS, Handler, StateLog

_log = structlog.get_logger(__name__)

#: The scheduler sleeps at most this long without a reason to wake.
_IDLE_S = 30.0
#: How long shutdown waits for flushes under way before cancelling them.
_STOP_GRACE_S = 5.0
#: A closed group's notification log entry is kept this long after its last notification
#: (and at least this long after a start): what it told resolved, replayed after a crash
#: from the last commit, is then no news. Expired entries are swept every _LOG_SWEEP_S.
LOG_RETENTION_S = 3600.0
_LOG_SWEEP_S = 300.0


#: Build the state store from the bootstrap servers, the handler per topic, and a timeout.
StateFactory = Callable[[list[str], dict[str, Handler], float], StateStore]


def _state_log(bootstrap: list[str], handlers: dict[str, Handler], timeout: float) -> StateStore:
    return StateLog(bootstrap, handlers, start_timeout=timeout)


class Delivery:
    def __init__(
        self,
        config: AnomalydConfig,
        clock: Clock,
        metrics: Metrics,
        *,
        state_factory: StateFactory = _state_log,
    ) -> None:
        self._store_factory = state_factory
        self.config = config
        self.clock = clock
        self.metrics = metrics
        self.notify_state = NotifyState(config.topics, Silences(config.silences), clock)
        self._owned: set[int] = set()
        #: Gained shards whose groups are being rebuilt from the state topic.
        self._restoring: set[int] = set()
        self._restored = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._store: StateStore | None = None
        self._dispatcher: Dispatcher | None = None
        self._scheduler: asyncio.Task[None] | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self._holds: set[asyncio.Task[None]] = set()
        self._hold_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._next_sweep = 0.0

    def attach(self, *, send_alert_dlq: Sender) -> None:
        """Connect the dead-letter output (the app's alerts.dlq topic) once it exists."""
        self._send_alert_dlq = send_alert_dlq

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the state topics, open the HTTP session and build the dispatcher."""
        self._store = self._store_factory(
            self.config.kafka.bootstrap,
            self.notify_state.handlers(),
            max(15.0, self.config.kafka.effective_session_timeout),
        )
        self.notify_state.bind(self._store)
        await self._store.start()
        self._session = aiohttp.ClientSession()
        self._dispatcher = self._build_dispatcher(self._session)
        _log.info(
            "delivery_started",
            silences=len(self.silences.all()),
            notify_log=len(self.notify_state.nflog),
            held_alerts=len(self.notify_state.held),
        )

    async def schedule(self) -> None:
        """Once started (the worker's services all are): flush groups on time."""
        self._next_sweep = self.clock.now() + LOG_RETENTION_S
        self._scheduler = asyncio.create_task(self._schedule(), name="notify-scheduler")

    async def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scheduler
        if self._flushes:  # bounded: a receiver that hangs must not hold up shutdown
            await asyncio.wait(set(self._flushes), timeout=_STOP_GRACE_S)
        for task in set(self._flushes):
            task.cancel()
        await asyncio.gather(*self._flushes, return_exceptions=True)
        if self._holds:  # state writes of alerts taken on their write's acknowledgement
            await asyncio.wait(set(self._holds), timeout=_STOP_GRACE_S)
        if self._store is not None:
            await self._store.stop()
        if self._session is not None:
            await self._session.close()

    def reconfigure(self, config: AnomalydConfig) -> None:
        """Adopt a reloaded config's notification sections at once (`prepare`, then
        its commit)."""
        self.prepare(config)()

    def prepare(self, config: AnomalydConfig) -> Callable[[], None]:
        """Build a reloaded config's receivers, routes, inhibition and retry policy
        without changing anything (raises if a receiver cannot be built); the function
        returned adopts them with the config's silences. Alerts held in groups stay held
        and are routed again (see `Dispatcher.reconfigure`); a flush under way finishes
        with what it started with."""
        session = self._session  # None: not started yet, start() builds from the config
        routing = self._routing(config, session) if session is not None else None
        return lambda: self._adopt(config, routing, started=session is not None)

    def _adopt(
        self, config: AnomalydConfig, routing: NotifyPipeline | None, *, started: bool
    ) -> None:
        self.config = config
        self.silences.reconfigure(config.silences)
        if not started:
            return
        if routing is None:
            if self._dispatcher is not None:
                self._dispatcher.clear()
            self._dispatcher = None
        elif self._dispatcher is None:
            self._dispatcher = self._new_dispatcher(routing)
            owned = [held for held in self.notify_state.held.values() if held.shard in self._owned]
            self._dispatcher.restore(owned, self.clock.now())
        else:
            self._dispatcher.reconfigure(routing.root, routing.pipeline, self.clock.now())
        self._wake.set()

    def _build_dispatcher(self, session: aiohttp.ClientSession) -> Dispatcher | None:
        routing = self._routing(self.config, session)
        return self._new_dispatcher(routing) if routing is not None else None

    def _new_dispatcher(self, routing: NotifyPipeline) -> Dispatcher:
        nflog, forget = self.notify_state.nflog, self.notify_state.forget
        return Dispatcher(routing.root, routing.pipeline, nflog, self.metrics, on_forget=forget)

    def _routing(
        self, config: AnomalydConfig, session: aiohttp.ClientSession
    ) -> NotifyPipeline | None:
        """The routing tree and the flush pipeline of `config` (`notify.builder`)."""
        parts = NotifyParts(
            session=session,
            clock=self.clock,
            metrics=self.metrics,
            silences=self.silences,
            log=self.notify_state.nflog,
            inhibition_sources=self._inhibition_sources,
            dead_letter=self._dead_letter,
        )
        return build_notify(config, parts)

    # -- alerts in ----------------------------------------------------------------------------

    async def deliver(self, raw: bytes, shard: int, offset: int) -> None:
        """Take one alert record read from the alerts topic (partition `shard`, `offset`)."""
        if self._dispatcher is None:
            return
        if shard not in self._owned:
            await self.assign(self._owned | {shard})
        while shard in self._restoring:  # join its groups once they are back, not before
            await self._restored.wait()
        if offset <= self.notify_state.applied.get(shard, -1):
            _log.debug("alert_replay_skipped", shard=shard, offset=offset)
            return
        held = self._take(raw, shard, offset, via="read")
        if held is not None:
            await self._hold(held, offset)

    def written(self, raw: bytes, shard: int, offset: int) -> bool:
        """An alert this worker wrote is durable at `offset` of partition `shard` (the
        broker acknowledged it). If this worker reads that partition and has taken in
        every alert before it, take this one in now instead of when it is read back: one
        broker round trip sooner. Reading it back is then a replay, skipped by offset.
        Otherwise alerts before it are still to be read, and this one waits its turn.

        Returns whether it was taken."""
        if self._dispatcher is None or shard not in self._owned or shard in self._restoring:
            return False  # not read here, or its groups are not back yet
        if self.notify_state.applied.get(shard, -1) != offset - 1:
            return False
        held = self._take(raw, shard, offset, via="write")
        if held is not None:
            task = asyncio.create_task(self._hold(held, offset))
            self._holds.add(task)
            task.add_done_callback(self._hold_done)
        return True

    def _take(self, raw: bytes, shard: int, offset: int, via: str) -> Held | None:
        """Put an alert into its groups, with no await: the next offset of its shard is
        only ever taken after this one. Returns what is to be persisted as held."""
        assert self._dispatcher is not None
        alert = Alert.from_json(orjson.loads(raw))
        held = self._dispatcher.insert(alert, shard, self.clock.now())
        self.notify_state.note_applied(shard, offset)
        self.metrics.alerts_taken.labels(via).inc()
        self._start_due()  # group_wait 0: the flush takes this state before the next one
        self._wake.set()
        return held

    async def _hold(self, held: Held, offset: int) -> None:
        # One write at a time, in the order the alerts were taken: an alert's later state
        # must not be overwritten by an earlier one on the compacted topic.
        async with self._hold_lock:
            await self.notify_state.hold(held, offset)

    def _hold_done(self, task: asyncio.Task[None]) -> None:
        self._holds.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The alert is in its groups and notified as usual; only a restart would not
            # know it is held (the next owner replays it from the alerts topic).
            _log.error("alert_hold_failed", exc_info=task.exception())

    async def assign(self, shards: set[int]) -> None:
        """This worker now reads exactly these partitions of the alerts topic: let go of the
        others' alerts, and rebuild the groups of the new ones from the state topic."""
        lost, gained = self._owned - shards, shards - self._owned
        self._owned = set(shards)
        if self._dispatcher is None or self._store is None or not (lost or gained):
            return
        if lost:
            self._dispatcher.drop_shards(lost)
        if gained:
            self._restoring |= gained
            try:
                await self._store.catch_up()
                held = self.notify_state.held.values()
                restored = [item for item in held if item.shard in gained]
                self._dispatcher.restore(restored, self.clock.now())
            finally:
                self._restoring -= gained
                self._restored.set()  # wakes the deliveries waiting for these shards
                self._restored = asyncio.Event()
            _log.info("notify_groups_restored", shards=sorted(gained), alerts=len(restored))
        self._wake.set()

    # -- flushing -----------------------------------------------------------------------------

    async def _schedule(self) -> None:
        """Start the flush of each group when it is due; each flush is its own task, so a
        receiver that is slow or down delays only its own groups."""
        while True:
            self._wake.clear()
            self._start_due()
            self._sweep_if_due()
            await self._sleep_until_due()

    async def flush_due(self) -> None:
        """Start the flushes due now and wait for every flush under way."""
        self._start_due()
        await self.idle()

    async def idle(self) -> None:
        """Wait until no flush is under way. A flush's own failure is logged by the flush
        (and by `_flush_done`), not raised here."""
        if self._flushes:
            await asyncio.wait(set(self._flushes))

    def _start_due(self) -> None:
        if self._dispatcher is not None:
            for pending in self._dispatcher.take_due(self.clock.now()):
                self._start(self._dispatcher.flush(pending))

    def _sweep_if_due(self) -> None:
        now = self.clock.now()
        if self._dispatcher is not None and now >= self._next_sweep:
            self._next_sweep = now + _LOG_SWEEP_S
            self._start(self.expire_log(now - LOG_RETENTION_S))

    async def expire_log(self, before: float) -> None:
        """Forget the notification log entries of closed groups idle since `before`. A write
        that fails is logged; the entry is tried again at the next sweep."""
        if self._dispatcher is None:
            return
        try:
            expired = await self._dispatcher.expire_log(before)
        except WRITE_ERRORS:  # the state topics are not writable now
            _log.exception("notify_log_expiry_failed", retry_in=_LOG_SWEEP_S)
            return
        if expired:
            _log.info("notify_log_expired", entries=expired)

    async def _sleep_until_due(self) -> None:
        next_at = self._dispatcher.next_flush_at() if self._dispatcher is not None else None
        delay = _IDLE_S if next_at is None else min(_IDLE_S, next_at - self.clock.now())
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    def _start(self, flush: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(flush)
        self._flushes.add(task)
        task.add_done_callback(self._flush_done)

    def _flush_done(self, task: asyncio.Task[None]) -> None:
        self._flushes.discard(task)
        self._wake.set()  # the group may be due again already
        if not task.cancelled() and task.exception() is not None:
            _log.error("notify_flush_crashed", exc_info=task.exception())

    def _inhibition_sources(self) -> list[Alert]:
        return [held.alert for held in self.notify_state.held.values()]

    # -- silences (the API's store) -----------------------------------------------------------

    @property
    def silences(self) -> Silences:
        return self.notify_state.silences

    async def save_silence(self, silence: Silence) -> None:
        """Persist a silence created or changed through the API; it applies at once."""
        await self.notify_state.save_silence(silence)
        self._wake.set()

    def new_silence_id(self) -> str:
        return str(uuid.uuid4())

    # -- dead letters -------------------------------------------------------------------------

    async def _dead_letter(self, letter: DeadLetter) -> None:
        body = orjson.dumps(
            {
                "receiver": letter.receiver,
                "reason": letter.reason,
                "detail": letter.detail,
                "attempts": letter.attempts,
                "groupKey": letter.group_key,
                "notificationId": letter.notification_id,
                "alerts": [alert.to_json() for alert in letter.alerts],
            }
        )
        headers = [("reason", letter.reason.encode()), ("receiver", letter.receiver.encode())]
        await self._send_alert_dlq(letter.alerts[0].fingerprint.encode(), body, headers)
