"""What a backtest writes and prints: per-event scores, the alerts it would send, a summary."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import orjson

from anomalyd.backtest.run import BacktestResult
from anomalyd.drift import WindowRecord
from anomalyd.evaluate.pages import pages, stream_days


def write_outputs(result: BacktestResult, out_dir: Path) -> tuple[Path, Path]:
    """scores.csv (a row per event and field), alerts.jsonl, and drift.jsonl (closed windows)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    scores, alerts = out_dir / "scores.csv", out_dir / "alerts.jsonl"
    with scores.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["stream", "field", "ts", "value", "score", "model_score", "rule_hits", "warm"]
        )
        for v in result.verdicts:
            model_score = "" if v.model_score is None else f"{v.model_score:.6f}"
            hits = ";".join(v.rule_hits)
            writer.writerow(
                [v.stream, v.field, v.ts, v.value, f"{v.score:.6f}", model_score, hits, int(v.warm)]
            )
    with alerts.open("wb") as handle:
        for alert in result.alerts:
            handle.write(orjson.dumps(alert.to_json()) + b"\n")
    with (out_dir / "drift.jsonl").open("wb") as handle:
        for record in result.drift:
            handle.write(orjson.dumps(record.to_json()) + b"\n")
    return scores, alerts


def summary_lines(result: BacktestResult, elapsed: float) -> list[str]:
    firing = result.firing()
    streams = {v.stream for v in result.verdicts}
    rate = result.events / elapsed if elapsed > 0 else 0.0
    lines = [
        f"events: {result.events} over {len(streams)} stream(s) in {elapsed:.2f}s ({rate:,.0f}/s)",
        f"invalid: {sum(result.invalid.values())}"
        + "".join(f"  {code}={n}" for code, n in sorted(result.invalid.items())),
        f"alerts fired: {len(firing)}, resolved: {len(result.alerts) - len(firing)}",
        _pages_line(result),
    ]
    lines += _table("per detector", Counter(a.labels.get("detector", "") for a in firing))
    lines += _table("per alertname", Counter(a.labels.get("alertname", "") for a in firing))
    lines += _table("per stream", Counter(a.labels.get("stream", "") for a in firing))
    if result.drift:
        drifting = Counter(
            r.stream for r in result.drift if r.to_json().get("status") == "drifting"
        )
        lines.append(
            f"drift windows closed: {len(result.drift)}, drifting: {sum(drifting.values())}"
        )
        lines += _coverage(result.drift)
        lines += _table("drifting windows per stream", drifting)
    return lines


def _coverage(records: Sequence[WindowRecord]) -> list[str]:
    """How many of the streams' windows were judged, and the streams too sparse to be:
    a stream's window is judged when one of its fields was compared with a reference."""
    windows: dict[tuple[str, float], bool] = {}
    for r in records:
        windows[(r.stream, r.start)] = windows.get((r.stream, r.start), False) or r.judged
    judged = sum(windows.values())
    by_stream = Counter(stream for stream, _ in windows)
    lines = [f"drift: judged {judged} of {len(windows)} windows ({len(by_stream)} stream(s))"]
    sparse = sorted({r.stream for r in records if r.sparse})
    if sparse:
        shown = ", ".join(sparse[:10]) + (
            f" and {len(sparse) - 10} more" if len(sparse) > 10 else ""
        )
        lines.append(f"drift: {len(sparse)} stream(s) too sparse to judge most windows: {shown}")
    return lines


def _pages_line(result: BacktestResult) -> str:
    """Pages (alerts that start firing, drift aside) and how many a stream gets a day."""
    spans: dict[str, tuple[float, float]] = {}
    for v in result.verdicts:
        first, last = spans.get(v.stream, (v.ts, v.ts))
        spans[v.stream] = (min(first, v.ts), max(last, v.ts))
    days = stream_days(spans.values())
    count = len(pages(result.alerts))
    per_day = f"{count / days:.3f} per stream-day" if days > 0 else "under a day of data"
    return f"pages: {count} ({per_day})"


def _table(title: str, counts: Counter[str]) -> list[str]:
    if not counts:
        return []
    width = max(len(name) for name in counts)
    return [f"{title}:"] + [f"  {name:<{width}}  {n}" for name, n in counts.most_common()]
