"""Reload the config file while the worker runs, without a restart and without losing
what the streams learned.

Triggers: SIGHUP, and a change of the file (watched through its directory, because
editors and Kubernetes replace files atomically: watching the file itself loses the
watch after the first replace). A change of the file is read once it has settled: two
reads `settle` seconds apart that agree, so a file rewritten in place is not applied
half-written. SIGHUP reloads at once. A reload loads and checks the file as the worker
and `check-config` do (`validate.load_checked`: `${VAR}` and `ANOMALYD_*` overrides
apply, receivers are built, templates rendered against sample alerts), then:

- invalid: rejected, one `config_reload_rejected` log line per problem; the running
  config stays;
- valid: the live sections that changed are applied (`config.diff.LIVE_SECTIONS`), all
  or nothing: the notification side is built first without touching anything
  (`Delivery.prepare`); then detection adopts the config (`Runtime.reconfigure`, which
  restores the running config if it fails: `ReconfigureFailed`); only then is the
  notification side swapped in. A failure at any step before the swap is a rejection,
  and the running config stays. Keys that need a restart are logged
  (`config_change_needs_restart`) and reported on /api/status, not applied.

Outcomes are counted in `anomalyd_config_reloads_total{outcome}`; the last one is kept
for /api/status. Only this module and the worker's own (Faust's INT/TERM) handle signals.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import structlog
from mode import Service
from watchfiles import Change, awatch

from anomalyd.clock import Clock
from anomalyd.config import (
    AnomalydConfig,
    ConfigDiff,
    ConfigError,
    config_version,
    diff_configs,
    live_config,
)
from anomalyd.domain import format_time
from anomalyd.metrics import Metrics
from anomalyd.validate import load_checked
from anomalyd.worker.detection.runtime import ReconfigureFailed

_log = structlog.get_logger(__name__)

ReloadOutcome = Literal["ok", "rejected", "restart_needed"]

#: Kubernetes mounts a ConfigMap's files as symlinks through `..data`, and updates them by
#: swapping that symlink: the file's own name sees no event.
_K8S_DATA = "..data"


#: A second read of a changed file this many times at most before it is taken as it is
#: (a file rewritten without end still gets read; a partial one is then rejected or not).
_SETTLE_ROUNDS = 10


class Detection(Protocol):
    """What applies the detection sections (`Runtime`): adopts the config, or restores
    the running one and raises ReconfigureFailed (anything else: its state is unknown)."""

    async def reconfigure(self, config: AnomalydConfig) -> None: ...


class Notification(Protocol):
    """What applies the notification sections (`Delivery`): `prepare` builds what the
    config needs without changing anything (and raises if it cannot); the function it
    returns swaps that in."""

    def prepare(self, config: AnomalydConfig) -> Callable[[], None]: ...


@dataclass(frozen=True, slots=True)
class ReloadRecord:
    """One reload: when, why, how it ended, and the config version in force after it."""

    at: float
    trigger: str  # "sighup" | "file" | ...
    outcome: ReloadOutcome
    config_version: str
    applied: tuple[str, ...] = ()
    needs_restart: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "at": format_time(self.at),
            "trigger": self.trigger,
            "outcome": self.outcome,
            "config_version": self.config_version,
            "applied": list(self.applied),
            "needs_restart": list(self.needs_restart),
            "problems": list(self.problems),
        }


def outcome_of(diff: ConfigDiff) -> ReloadOutcome:
    """A valid file: `restart_needed` while some change waits for a restart, else `ok`."""
    return "restart_needed" if diff.restart else "ok"


class ConfigReloader(Service):
    def __init__(
        self,
        path: str | os.PathLike[str],
        config: AnomalydConfig,
        detection: Detection,
        notification: Notification,
        clock: Clock,
        metrics: Metrics,
        *,
        load: Callable[[Path], AnomalydConfig] = load_checked,
        debounce_ms: int = 200,
        settle: float = 1.0,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        #: The config in force: the file's live sections as of the last good reload.
        self.config = config
        self.version = config_version(config)
        #: The most recent reload, for /api/status; None until the first.
        self.last: ReloadRecord | None = None
        self._detection = detection
        self._notification = notification
        self._clock = clock
        self._metrics = metrics
        self._load = load
        self._debounce_ms = debounce_ms
        self._settle = settle
        self._wanted = asyncio.Event()
        self._triggers: list[str] = []
        self._stop_watching = asyncio.Event()
        self._digest = _digest(self.path)

    # -- triggers ---------------------------------------------------------------------------

    def request(self, trigger: str) -> None:
        """Ask for a reload (from a signal handler or the watcher); requests that come
        while one runs are served by one more reload after it."""
        self._triggers.append(trigger)
        self._wanted.set()

    async def on_start(self) -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.request, "sighup")
        _log.info("config_reload_ready", path=str(self.path), config_version=self.version)

    async def on_stop(self) -> None:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        self._stop_watching.set()

    @Service.task
    async def _serve_requests(self) -> None:
        while not self.should_stop:
            await self._wanted.wait()
            self._wanted.clear()
            triggers, self._triggers = self._triggers, []
            if triggers == ["file"] * len(triggers) and await self._settled() == self._digest:
                _log.debug("config_file_unchanged", path=str(self.path))
                continue
            await self.reload(triggers[0] if len(set(triggers)) == 1 else "+".join(triggers))

    @Service.task
    async def _watch_file(self) -> None:
        """Request a reload when the file (or Kubernetes' `..data` link) changes."""
        names = {self.path.name, _K8S_DATA}

        def relevant(change: Change, path: str) -> bool:
            return Path(path).name in names

        try:
            async for _ in awatch(
                self.path.parent,
                watch_filter=relevant,
                debounce=self._debounce_ms,
                stop_event=self._stop_watching,
                recursive=False,
            ):
                self.request("file")
        except (OSError, RuntimeError) as error:  # e.g. out of inotify watches
            _log.error(
                "config_watch_failed",
                path=str(self.path.parent),
                detail=str(error),
                hint="file changes are not seen; reload with SIGHUP",
            )

    async def _settled(self) -> str | None:
        """The file's digest once two reads `settle` seconds apart agree: a writer that
        rewrites the file in place (not atomically) is given time to finish."""
        digest = _digest(self.path)
        for _ in range(_SETTLE_ROUNDS):
            if digest == self._digest:
                return digest  # what the last reload read: nothing new to wait for
            await asyncio.sleep(self._settle)
            again = _digest(self.path)
            if again == digest:
                return digest
            digest = again
        _log.warning("config_file_not_settling", path=str(self.path), rounds=_SETTLE_ROUNDS)
        return digest

    # -- the reload -------------------------------------------------------------------------

    async def reload(self, trigger: str) -> ReloadRecord:
        """Load the file again and apply what can be applied live, all or nothing."""
        self._digest = _digest(self.path)
        try:
            new = self._load(self.path)
        except ConfigError as error:
            return self._rejected(trigger, error.problems)
        diff = diff_configs(self.config, new)
        live = live_config(self.config, new)
        if diff.applied:
            problem = await self._apply(live, trigger)
            if problem is not None:
                return self._rejected(trigger, [problem])
        self.config, self.version = live, config_version(live)
        record = ReloadRecord(
            self._clock.now(), trigger, outcome_of(diff), self.version, diff.applied, diff.restart
        )
        if diff.restart:
            _log.warning(
                "config_change_needs_restart", keys=list(diff.restart), path=str(self.path)
            )
        _log.info(
            "config_reloaded",
            trigger=trigger,
            outcome=record.outcome,
            config_version=self.version,
            applied=list(diff.applied),
        )
        return self._record(record)

    async def _apply(self, live: AnomalydConfig, trigger: str) -> str | None:
        """Apply the live sections; the problem if the running config stayed instead."""
        try:
            commit = self._notification.prepare(live)
        except Exception as error:  # noqa: BLE001 (nothing changed yet: logged, rejected)
            _log.exception("config_reload_failed", trigger=trigger, stage="receivers")
            return f"the receivers could not be built: {type(error).__name__}: {error}"
        try:
            await self._detection.reconfigure(live)
        except ReconfigureFailed as error:  # detection restored the running config
            _log.error(
                "config_reload_failed", trigger=trigger, stage="detection", detail=str(error)
            )
            return f"detection could not adopt the config: {error}"
        # Only swaps prepared objects in; if even that fails, the state is unknown: stop.
        commit()
        return None

    def _rejected(self, trigger: str, problems: list[str]) -> ReloadRecord:
        for problem in problems:
            _log.error(
                "config_reload_rejected", path=str(self.path), trigger=trigger, problem=problem
            )
        record = ReloadRecord(
            self._clock.now(), trigger, "rejected", self.version, problems=tuple(problems)
        )
        return self._record(record)

    def _record(self, record: ReloadRecord) -> ReloadRecord:
        self._metrics.config_reloads.labels(record.outcome).inc()
        self.last = record
        return record

    def status(self) -> dict[str, Any]:
        """For /api/status: where the config comes from and how the last reload went."""
        return {
            "path": str(self.path),
            "config_version": self.version,
            "last": self.last.to_json() if self.last is not None else None,
        }


def _digest(path: Path) -> str | None:
    """The file's content hash; None if it cannot be read (the reload will say why)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
