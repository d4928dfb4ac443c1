"""Alert identity and construction in Alertmanager's data model, beside `domain.Alert`:
the fingerprint, a firing alert, its resolution. Detection (`decide/`) and drift
(`drift/`) build their alerts with these."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace

from anomalyd.domain import Alert, AlertStatus

#: The annotation naming the version of the config that decided an alert's state.
CONFIG_VERSION = "config_version"

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK = (1 << 64) - 1
_SEPARATOR = 0xFF


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's label-set fingerprint (FNV-1a 64 over sorted names and values),
    so an alert has the same id here as in Alertmanager."""
    digest = _FNV_OFFSET
    for name in sorted(labels):
        for chunk in (name.encode(), labels[name].encode()):
            for byte in chunk:
                digest = ((digest ^ byte) * _FNV_PRIME) & _MASK
            digest = ((digest ^ _SEPARATOR) * _FNV_PRIME) & _MASK
    return f"{digest:016x}"


def alert_url(external_url: str, fp: str) -> str:
    return f"{external_url.rstrip('/')}/api/alerts/{fp}"


def firing(
    labels: Mapping[str, str], annotations: Mapping[str, str], starts_at: float, external_url: str
) -> Alert:
    fp = fingerprint(labels)
    return Alert(
        labels=dict(labels),
        annotations=dict(annotations),
        status=AlertStatus.FIRING,
        starts_at=starts_at,
        fingerprint=fp,
        generator_url=alert_url(external_url, fp),
    )


def resolved(alert: Alert, ends_at: float, annotations: Mapping[str, str] | None = None) -> Alert:
    return Alert(
        labels=alert.labels,
        annotations=alert.annotations if annotations is None else dict(annotations),
        status=AlertStatus.RESOLVED,
        starts_at=alert.starts_at,
        fingerprint=alert.fingerprint,
        generator_url=alert.generator_url,
        ends_at=ends_at,
    )


def with_version(alert: Alert, version: str | None) -> Alert:
    """The alert annotated with the config version that decided it (unchanged if None)."""
    if version is None:
        return alert
    return replace(alert, annotations={**alert.annotations, CONFIG_VERSION: version})


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def render_summary(template: str, values: Mapping[str, str]) -> str:
    """Fill `{name}` placeholders from `values` only: no attribute access, no code,
    unknown names stay as written. Safe for templates from config and values from events."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)
