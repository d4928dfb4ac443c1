"""What a reload of the config file changes: the sections the worker applies live, and
the keys that only take effect after a restart. Pure: two validated configs in, the
difference out.

Live: detection (`rules`, `model`, `drift`, `alerting`, `ingest`) and notification
(`receivers`, `route`, `inhibit_rules`, `silences`, `delivery`). The rest is read once
when the worker starts: its identity and local state (`app`), its connections and
topics (`kafka`, `topics`), its HTTP server (`http`) and the snapshot timer (`state`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from anomalyd.config.schema import AnomalydConfig

#: Sections a running worker re-reads on a reload.
LIVE_SECTIONS = (
    "rules",
    "model",
    "drift",
    "alerting",
    "ingest",
    "receivers",
    "route",
    "inhibit_rules",
    "silences",
    "delivery",
)

#: Sections read once at start: a change waits for the next restart.
RESTART_SECTIONS = ("app", "kafka", "topics", "http", "state")


@dataclass(frozen=True, slots=True)
class ConfigDiff:
    """`applied`: the live sections that changed. `restart`: the keys (dotted paths, e.g.
    `kafka.brokers`) that changed but need a restart; they are not applied."""

    applied: tuple[str, ...] = ()
    restart: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.applied or self.restart)


def diff_configs(running: AnomalydConfig, new: AnomalydConfig) -> ConfigDiff:
    """What differs between the running config and a newly loaded one."""
    applied = tuple(s for s in LIVE_SECTIONS if getattr(running, s) != getattr(new, s))
    restart: list[str] = []
    for section in RESTART_SECTIONS:
        before, after = _dumped(running, section), _dumped(new, section)
        restart.extend(_changed_keys(before, after, section))
    return ConfigDiff(applied, tuple(restart))


def live_config(running: AnomalydConfig, new: AnomalydConfig) -> AnomalydConfig:
    """The config the worker runs after a reload: the new file's live sections, and the
    running config's sections that need a restart."""
    kept = {section: getattr(running, section) for section in RESTART_SECTIONS}
    return new.model_copy(update=kept)


def _dumped(config: AnomalydConfig, section: str) -> Any:
    # Python mode keeps SecretStr objects, which compare by their secret value.
    value = getattr(config, section)
    return value.model_dump(by_alias=True) if value is not None else None


def _changed_keys(before: Any, after: Any, path: str) -> list[str]:
    """The dotted paths of the leaves that differ (a list counts as one leaf)."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        keys = sorted({*before, *after})
        return [
            changed
            for key in keys
            for changed in _changed_keys(before.get(key), after.get(key), f"{path}.{key}")
        ]
    return [] if before == after else [path]


__all__ = ["LIVE_SECTIONS", "RESTART_SECTIONS", "ConfigDiff", "diff_configs", "live_config"]
