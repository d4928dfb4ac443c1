"""Reload the config file while the worker runs, without a restart and without losing
what the streams learned.

Triggers: SIGHUP, and a change of the file (watched through its directory, because
editors and Kubernetes replace files atomically: watching the file itself loses the
watch after the first replace). A reload loads the file as the worker did at start
(`${VAR}` and `ANOMALYD_*` overrides apply), then:

- invalid: rejected, one `config_reload_rejected` log line per problem; the running
  config stays;
- valid: the live sections that changed are applied (`config.diff.LIVE_SECTIONS`:
  detection through `Runtime.reconfigure`, notification through
  `Delivery.reconfigure`); keys that need a restart are logged
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
    load_config,
)
from anomalyd.domain import format_time
from anomalyd.metrics import Metrics

_log = structlog.get_logger(__name__)

Outcome = Literal["ok", "rejected", "restart_needed"]

#: Kubernetes mounts a ConfigMap's files as symlinks through `..data`, and updates them by
#: swapping that symlink: the file's own name sees no event.
_K8S_DATA = "..data"


class Detection(Protocol):
    """What applies the detection sections (`Runtime`)."""

    async def reconfigure(self, config: AnomalydConfig) -> None: ...


class Notification(Protocol):
    """What applies the notification sections (`Delivery`)."""

    def reconfigure(self, config: AnomalydConfig) -> None: ...


@dataclass(frozen=True, slots=True)
class ReloadRecord:
    """One reload: when, why, how it ended, and the config version in force after it."""

    at: float
    trigger: str  # "sighup" | "file" | ...
    outcome: Outcome
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


def outcome_of(diff: ConfigDiff) -> Outcome:
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
        load: Callable[[Path], AnomalydConfig] = load_config,
        debounce_ms: int = 200,
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
            if triggers == ["file"] * len(triggers) and _digest(self.path) == self._digest:
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

    # -- the reload -------------------------------------------------------------------------

    async def reload(self, trigger: str) -> ReloadRecord:
        """Load the file again and apply what can be applied live."""
        self._digest = _digest(self.path)
        try:
            new = self._load(self.path)
        except ConfigError as error:
            return self._rejected(trigger, error.problems)
        diff = diff_configs(self.config, new)
        live = live_config(self.config, new)
        if diff.applied:
            try:
                await self._detection.reconfigure(live)
                self._notification.reconfigure(live)
            except Exception:  # a bug, not a bad file: half applied, so stop the worker
                _log.exception("config_reload_failed", trigger=trigger, applied=diff.applied)
                raise
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
