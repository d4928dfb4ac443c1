"""The NAB corpus on disk: labelled series and the scoring profiles.

Layout (as in NAB)::

    <root>/data/<category>/<name>.csv      header ``timestamp,value``, rows in time order
    <root>/labels/combined_windows.json    {"<category>/<name>.csv": [["start", "end"], ...]}
    <root>/profiles.json                   {"<profile>": {"CostMatrix": {"tpWeight": ..., ...}}}

Timestamps are naive UTC (``YYYY-MM-DD HH:MM:SS``, labels add ``.ffffff``) and become epoch
seconds. Loading is strict: a CSV without labels, labels without a CSV, rows out of time order or
a label window that matches no row are errors. This is the only module here that does I/O.
"""

from __future__ import annotations

import csv
import itertools
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from anomalyd.evaluate.windows import window_rows

__all__ = ["Profile", "Series", "load_corpus", "load_profiles", "parse_timestamp"]


@dataclass(frozen=True)
class Series:
    """One labelled series.

    `name` is NAB's key, ``"<category>/<name>.csv"``; `windows` are the labelled anomaly
    windows as inclusive ``(start, end)`` epoch seconds, sorted and disjoint.
    """

    name: str
    timestamps: list[float]
    values: list[float]
    windows: list[tuple[float, float]]


@dataclass(frozen=True)
class Profile:
    """A NAB scoring profile: the weights of its cost matrix (``tnWeight`` is unused by NAB)."""

    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float


def parse_timestamp(text: str) -> float:
    """Epoch seconds of a naive UTC ``YYYY-MM-DD HH:MM:SS[.ffffff]`` timestamp.

    >>> parse_timestamp("1970-01-02 00:00:01.500000")
    86401.5
    """
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        raise ValueError(f"timestamp {text!r} must be naive UTC, without an offset")
    return moment.replace(tzinfo=UTC).timestamp()


def load_corpus(root: Path) -> list[Series]:
    """Every series under ``root/data`` with its label windows, sorted by name."""
    labels = _load_labels(root / "labels" / "combined_windows.json")
    files = {p.relative_to(root / "data").as_posix(): p for p in (root / "data").glob("*/*.csv")}
    if missing := sorted(files.keys() - labels.keys()):
        raise ValueError(f"no labels for {missing}")
    if orphans := sorted(labels.keys() - files.keys()):
        raise ValueError(f"labels for missing data files {orphans}")
    return [_load_series(name, files[name], labels[name]) for name in sorted(files)]


def load_profiles(root: Path) -> dict[str, Profile]:
    """The cost matrices in ``root/profiles.json``, by profile name."""
    raw: dict[str, Any] = json.loads((root / "profiles.json").read_text())
    profiles = {}
    for name, body in raw.items():
        matrix = body["CostMatrix"]
        profiles[name] = Profile(
            name=name,
            tp_weight=float(matrix["tpWeight"]),
            fp_weight=float(matrix["fpWeight"]),
            fn_weight=float(matrix["fnWeight"]),
        )
    return profiles


def _load_labels(path: Path) -> dict[str, list[tuple[float, float]]]:
    raw: dict[str, list[list[str]]] = json.loads(path.read_text())
    return {
        name: [(parse_timestamp(start), parse_timestamp(end)) for start, end in windows]
        for name, windows in raw.items()
    }


def _load_series(name: str, path: Path, windows: list[tuple[float, float]]) -> Series:
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        if header != ["timestamp", "value"]:
            raise ValueError(f"{name}: header {header} is not ['timestamp', 'value']")
        rows = [(parse_timestamp(ts), float(value)) for ts, value in reader]
    timestamps = [ts for ts, _ in rows]
    if any(later < earlier for earlier, later in itertools.pairwise(timestamps)):
        raise ValueError(f"{name}: rows are not in time order")
    try:
        window_rows(timestamps, windows)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from e
    return Series(name, timestamps, [value for _, value in rows], windows)
