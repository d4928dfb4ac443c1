"""Silence: mute the alerts a silence's matchers all match while it is active
(`startsAt <= now < endsAt`), as in Alertmanager. Silences come from the config file
and from the HTTP API; the worker persists the API's and applies what every worker
wrote. Muting is decided at flush time, so a silence created while an alert waits in
its group applies, and one that ends lets the alert through at the next flush."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum

import structlog

from anomalyd.config.matchers import matches_all
from anomalyd.config.routing import Silence
from anomalyd.notify.mute import MuteCheck

_log = structlog.get_logger(__name__)


class SilenceState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"


def silence_state(silence: Silence, now: float) -> SilenceState:
    if silence.starts_at is not None and now < silence.starts_at:
        return SilenceState.PENDING
    if silence.ends_at is not None and now >= silence.ends_at:
        return SilenceState.EXPIRED
    return SilenceState.ACTIVE


def expired(silence: Silence, now: float) -> Silence:
    """The silence ended now (Alertmanager's expire: a pending one never starts).
    Raises ValueError for a silence that has already ended."""
    match silence_state(silence, now):
        case SilenceState.EXPIRED:
            raise ValueError(f"silence {silence.stable_id()} has already expired")
        case SilenceState.PENDING:
            return silence.model_copy(update={"starts_at": now, "ends_at": now, "updated_at": now})
        case SilenceState.ACTIVE:
            return silence.model_copy(update={"ends_at": now, "updated_at": now})


class Silences:
    """Every known silence by id: the config's (read only) and the API's."""

    def __init__(self, configured: Sequence[Silence] = ()) -> None:
        self._configured = {silence.stable_id(): silence for silence in configured}
        self._created: dict[str, Silence] = {}

    def reconfigure(self, configured: Sequence[Silence]) -> None:
        """Replace the config's silences (a reload); the API's stay."""
        self._configured = {silence.stable_id(): silence for silence in configured}

    def apply(self, silence_id: str, silence: Silence | None) -> None:
        """Take a silence created, updated or deleted through the API (here or elsewhere)."""
        if silence is None:
            self._created.pop(silence_id, None)
        else:
            self._created[silence_id] = silence

    def get(self, silence_id: str) -> Silence | None:
        return self._configured.get(silence_id) or self._created.get(silence_id)

    def is_configured(self, silence_id: str) -> bool:
        return silence_id in self._configured

    def all(self) -> list[Silence]:
        return [*self._configured.values(), *self._created.values()]

    #: A `mute.Muter`.
    muted_event = "alert_silenced"

    def for_flush(self, now: float) -> MuteCheck:
        return lambda labels: self.mutes(labels, now)

    def mutes(self, labels: Mapping[str, str], now: float) -> str | None:
        """The id of an active silence that matches these labels, if any."""
        return next(iter(self.muting(labels, now)), None)

    def muting(self, labels: Mapping[str, str], now: float) -> list[str]:
        """The ids of every active silence that matches these labels (the API's
        `silencedBy`), the config's first."""
        return [
            silence_id
            for silence_id, silence in (*self._configured.items(), *self._created.items())
            if silence_state(silence, now) is SilenceState.ACTIVE
            and matches_all(silence.matchers, labels)
        ]
