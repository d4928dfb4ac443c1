"""The whole config check: the schema (`config.loader`), then what only building the
worker's parts shows (receivers: certificate files, email templates compiled and
rendered against sample alerts). `check-config`, the worker's start and every reload go
through `load_checked`, so a file `check-config` accepts is one the worker runs."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from anomalyd.config import AnomalydConfig, ConfigError, load_config
from anomalyd.notify.receivers import receiver_problems


def load_checked(
    path: str | os.PathLike[str],
    environ: Mapping[str, str] | None = None,
    overrides: Sequence[str] = (),
) -> AnomalydConfig:
    """`load_config`, then `check`; raises ConfigError listing every problem."""
    config = load_config(path, environ, overrides)
    check(config, str(path))
    return config


def check(config: AnomalydConfig, source: str) -> None:
    """Raise ConfigError if a valid schema still holds parts the worker cannot build."""
    problems = receiver_problems(config)
    if problems:
        raise ConfigError(source, problems)
