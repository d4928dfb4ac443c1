"""`anomalyd send`: events from JSONL or CSV files (or stdin) to the events topic.

Each row is checked with the worker's own parser first, so a typo is reported here with
its line number instead of landing in the dead-letter topic. Rows go out keyed by their
stream, as the worker expects (one stream stays in one partition, in order). Reading and
encoding are pure (lines in, `Outgoing` or `Skipped` out); only `send` touches Kafka.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson
import structlog

from anomalyd.backtest.reader import parse_csv_time
from anomalyd.config import AnomalydConfig
from anomalyd.domain import VALUE_FIELD, format_time
from anomalyd.ingest import InvalidEvent, Limits, parse_event

if TYPE_CHECKING:
    from anomalyd.worker.kafka.producer import EventProducer

log = structlog.get_logger(__name__)

HELP = "Send events from JSONL or CSV files (or stdin) to the events topic, keyed by stream."
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
#: A bar is drawn for inputs at least this long (and only on a terminal).
PROGRESS_FROM_ROWS = 10_000
#: How many skipped rows are listed one by one; the rest are only counted.
MAX_LISTED_PROBLEMS = 20


@dataclass(frozen=True, slots=True)
class Outgoing:
    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class Skipped:
    where: str  # "file.csv:12"
    reason: str


Row = Outgoing | Skipped


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="*",
        default=["-"],
        metavar="FILE",
        help="JSONL events (.jsonl, .ndjson, .json) or CSV (timestamp,value[,stream]); "
        "'-' or none: standard input",
    )
    parser.add_argument(
        "--format",
        choices=("jsonl", "csv"),
        help="input format (default: by file suffix; jsonl for standard input)",
    )
    parser.add_argument(
        "--stream",
        help="stream of CSV rows without a stream column (default: the file name without suffix)",
    )
    parser.add_argument(
        "--rate", type=float, help="events per second at most (default: as fast as possible)"
    )
    parser.add_argument("--topic", help="topic to write to (default: topics.events)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds to wait for the broker to accept a connection (default 30)",
    )


# -- reading: pure -----------------------------------------------------------------------------


def input_format(name: str, chosen: str | None) -> str:
    if chosen is not None:
        return chosen
    if name == "-" or name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    return "csv"


def jsonl_rows(lines: Iterable[bytes], where: str, limits: Limits, now: float) -> Iterator[Row]:
    """Each non-blank line, checked as the worker will check it and sent byte for byte.
    A line without `ts` takes its message's timestamp (now), as in the worker."""
    for number, line in enumerate(lines, start=1):
        raw = line.strip()
        if not raw:
            continue
        try:
            event = parse_event(raw, limits, default_ts=now, now=now)
        except InvalidEvent as invalid:
            yield Skipped(f"{where}:{number}", f"{invalid.code}: {invalid.detail}")
            continue
        yield Outgoing(event.stream.encode(), raw)


def csv_rows(text: IO[str], where: str, stream: str, limits: Limits, now: float) -> Iterator[Row]:
    """Rows of `timestamp,value[,stream]` (NAB's layout, as `backtest` reads), as events."""
    reader = csv.DictReader(text)
    if not reader.fieldnames or not {"timestamp", "value"} <= set(reader.fieldnames):
        yield Skipped(f"{where}:1", "a CSV needs the columns timestamp,value[,stream]")
        return
    for row in reader:
        doc = _csv_event(row, stream)
        if isinstance(doc, str):
            yield Skipped(f"{where}:{reader.line_num}", doc)
            continue
        raw = orjson.dumps(doc)
        try:
            event = parse_event(raw, limits, now=now)
        except InvalidEvent as invalid:
            yield Skipped(f"{where}:{reader.line_num}", f"{invalid.code}: {invalid.detail}")
            continue
        yield Outgoing(event.stream.encode(), raw)


def _csv_event(row: dict[str, Any], default_stream: str) -> dict[str, Any] | str:
    """The event of one CSV row, or why there is none."""
    try:
        ts = parse_csv_time(row["timestamp"] or "")
        value = float(row["value"] or "")
    except ValueError as error:
        return f"bad_row: {error}"
    return {
        "stream": row.get("stream") or default_stream,
        "ts": format_time(ts),
        VALUE_FIELD: value,
    }


def read_input(
    name: str, chosen_format: str | None, stream: str | None, limits: Limits, now: float
) -> Iterator[Row]:
    """The rows of one input: a path, or '-' for standard input."""
    fmt = input_format(name, chosen_format)
    binary: IO[bytes] = sys.stdin.buffer if name == "-" else Path(name).open("rb")  # noqa: SIM115
    where = "<stdin>" if name == "-" else name
    try:
        if fmt == "jsonl":
            yield from jsonl_rows(binary, where, limits, now)
        else:
            text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
            yield from csv_rows(text, where, stream or Path(name).stem, limits, now)
    finally:
        if name != "-":
            binary.close()


def count_lines(names: Iterable[str]) -> int:
    """Lines in the named files (standard input cannot be counted ahead)."""
    total = 0
    for name in names:
        if name == "-":
            return 0
        with Path(name).open("rb") as handle:
            total += sum(1 for _ in handle)
    return total


# -- sending -----------------------------------------------------------------------------------


@dataclass
class Tally:
    sent: int = 0
    skipped: int = 0
    failed: int = 0

    def failure(self, delivery: asyncio.Future[Any]) -> None:
        if not delivery.cancelled() and delivery.exception() is not None:
            self.failed += 1
            log.warning("send_failed", error=repr(delivery.exception()))


async def send_rows(
    producer: EventProducer,
    topic: str,
    rows: Iterable[Row],
    rate: float | None,
    clock: Callable[[], float],
    report: Callable[[Skipped, int], None],
) -> Tally:
    """Write every Outgoing row to `topic`, at most `rate` a second; report Skipped ones."""
    tally = Tally()
    started = clock()
    for row in rows:
        if isinstance(row, Skipped):
            tally.skipped += 1
            report(row, tally.skipped)
            continue
        if rate is not None:
            # Pace against the start, so a slow moment is caught up, not carried forward.
            await asyncio.sleep(max(0.0, started + tally.sent / rate - clock()))
        delivery = await producer.send(topic, row.value, key=row.key)
        delivery.add_done_callback(tally.failure)
        tally.sent += 1
    await producer.flush()
    return tally


def _report(row: Skipped, nth: int) -> None:
    if nth <= MAX_LISTED_PROBLEMS:
        print(f"{row.where}: skipped: {row.reason}", file=sys.stderr)
    elif nth == MAX_LISTED_PROBLEMS + 1:
        print("... (further skipped rows are only counted)", file=sys.stderr)


def _with_progress(rows: Iterator[Row], inputs: list[str]) -> Iterator[Row]:
    if not sys.stderr.isatty():
        return rows
    total = count_lines(inputs)
    if total < PROGRESS_FROM_ROWS:
        return rows
    from tqdm import tqdm

    return iter(tqdm(rows, total=total, unit="ev", leave=False))


def run(config: AnomalydConfig, args: argparse.Namespace) -> int:
    missing = [name for name in args.inputs if name != "-" and not Path(name).is_file()]
    if missing:
        print(f"send: no such file: {', '.join(missing)}", file=sys.stderr)
        return 1
    if args.rate is not None and args.rate <= 0:
        print("send: --rate must be positive", file=sys.stderr)
        return 2
    ingest = config.ingest
    limits = Limits(
        ingest.max_event_bytes, ingest.max_labels, ingest.max_fields, ingest.max_future_skew
    )
    now = time.time()
    rows: Iterator[Row] = (
        row
        for name in args.inputs
        for row in read_input(name, args.format, args.stream, limits, now)
    )
    topic = args.topic or config.topics.events
    bootstrap = ",".join(config.kafka.bootstrap)
    tally = asyncio.run(_send(bootstrap, topic, _with_progress(rows, args.inputs), args))
    print(f"sent {tally.sent} events to {topic} ({tally.skipped} skipped, {tally.failed} failed)")
    return 0 if tally.skipped == 0 and tally.failed == 0 else 1


async def _send(bootstrap: str, topic: str, rows: Iterator[Row], args: argparse.Namespace) -> Tally:
    from anomalyd.worker.kafka.producer import connect_producer

    producer = await connect_producer(bootstrap, args.timeout)
    try:
        return await send_rows(producer, topic, rows, args.rate, time.monotonic, _report)
    finally:
        await producer.stop()
