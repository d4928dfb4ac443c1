"""The whole config check: the schema (`config.loader`) and what only building the
worker's parts shows (receivers: certificate files, email templates compiled and
rendered against sample alerts), in one round. `check-config`, the worker's start and
every reload go through `load_checked`, so a file `check-config` accepts is one the
worker runs."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from anomalyd.config import AnomalydConfig, load_config
from anomalyd.notify.receivers import indexed_receiver_problems


def load_checked(
    path: str | os.PathLike[str],
    environ: Mapping[str, str] | None = None,
    overrides: Sequence[str] = (),
) -> AnomalydConfig:
    """`load_config` with the receivers built as the worker builds them; raises
    ConfigError listing every problem, the schema's and the receivers' together."""
    return load_config(path, environ, overrides, receiver_check=indexed_receiver_problems)
