"""Read history for a backtest: CSV (`timestamp,value[,stream]`, as NAB ships it) or
JSONL events (the worker's own event format, validated by the worker's own parser)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from anomalyd.domain import VALUE_FIELD, Event
from anomalyd.ingest import InvalidEvent, Limits, parse_event


def read_events(path: Path, limits: Limits) -> Iterator[Event | InvalidEvent]:
    """Every row of the file in order: an Event, or the InvalidEvent saying what is wrong."""
    if path.suffix in (".jsonl", ".ndjson", ".json"):
        return _read_jsonl(path, limits)
    return _read_csv(path)


def count_rows(path: Path) -> int:
    with path.open("rb") as handle:
        rows = sum(1 for _ in handle)
    return rows - (0 if path.suffix in (".jsonl", ".ndjson", ".json") else 1)


def _read_jsonl(path: Path, limits: Limits) -> Iterator[Event | InvalidEvent]:
    with path.open("rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                yield parse_event(line.rstrip(b"\r\n"), limits)
            except InvalidEvent as invalid:
                yield invalid


def _read_csv(path: Path) -> Iterator[Event | InvalidEvent]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"timestamp", "value"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: a CSV needs the columns timestamp,value[,stream]")
        for row in reader:
            try:
                yield Event(
                    stream=row.get("stream") or path.stem,
                    ts=parse_csv_time(row["timestamp"]),
                    values={VALUE_FIELD: _finite(row["value"])},
                )
            except ValueError as error:
                yield InvalidEvent("bad_row", f"line {reader.line_num}: {error}")


def parse_csv_time(text: str) -> float:
    """Epoch seconds or ISO-8601; a time without a zone is UTC (NAB's convention)."""
    try:
        return float(text)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _finite(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"value {text!r} is not finite")
    return value
