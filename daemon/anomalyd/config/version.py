"""The config's version: a short hash of what the worker runs, carried by every alert
(annotation `config_version`) and shown on /api/status, so an alert says which config
decided it."""

from __future__ import annotations

import hashlib

import orjson

from anomalyd.config.schema import AnomalydConfig

#: Hex digits kept: enough to tell versions apart, short enough to read.
_LENGTH = 12


def config_version(config: AnomalydConfig) -> str:
    """The first 12 hex digits of the SHA-256 of the validated config as canonical JSON
    (sorted keys, defaults filled in). Secrets do not enter it: they dump as `**********`,
    so rotating a token does not change the version, and the version reveals nothing."""
    body = config.model_dump(mode="json", by_alias=True)
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:_LENGTH]


__all__ = ["config_version"]
