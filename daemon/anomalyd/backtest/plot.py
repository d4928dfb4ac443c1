"""A chart of one backtest stream: per field, its values, labelled windows, drifting
windows and alerts, then its score against the threshold. Choosing what to draw
(`panels`) is pure; `plot` only draws it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from anomalyd.backtest.run import BacktestResult
from anomalyd.domain import VALUE_FIELD, AlertStatus, Verdict


class ChartChoiceError(ValueError):
    """`--stream` or `--field` names nothing in the backtest: the message says what exists."""


@dataclass(frozen=True)
class Panel:
    field: str
    rows: list[Verdict]
    fired: list[float]  # when alerts on this field started firing
    drifting: list[tuple[float, float]]  # windows inside a confirmed drift episode


def _named(kind: str, wanted: str, known: Sequence[str]) -> str:
    shown = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
    return f"no {kind} {wanted!r} in this backtest ({kind}s: {shown or 'none'})"


def choose_stream(result: BacktestResult, stream: str | None) -> str:
    """`stream`, checked; by default the first stream of the input."""
    streams = list(dict.fromkeys(v.stream for v in result.verdicts))
    if stream is None:
        if not streams:
            raise ChartChoiceError("the backtest judged no event: nothing to plot")
        return streams[0]
    if stream not in streams:
        raise ChartChoiceError(_named("stream", stream, streams))
    return stream


def panels(result: BacktestResult, stream: str, fields: Sequence[str] = ()) -> list[Panel]:
    """One panel per field of `stream` (or per field in `fields`, in that order)."""
    rows = [v for v in result.verdicts if v.stream == stream]
    known = list(dict.fromkeys(v.field for v in rows))
    for name in fields:
        if name not in known:
            raise ChartChoiceError(_named("field", name, known))
    return [_panel(result, stream, name, rows) for name in (fields or known)]


def _panel(result: BacktestResult, stream: str, field: str, rows: list[Verdict]) -> Panel:
    fired = [
        a.starts_at
        for a in result.alerts
        if a.status is AlertStatus.FIRING
        and a.labels.get("stream") == stream
        and a.labels.get("field", VALUE_FIELD) == field
    ]
    drifting = [
        (r.start, r.end)
        for r in result.drift
        if r.stream == stream and r.field == field and r.status.value == "drifting"
    ]
    return Panel(field, [v for v in rows if v.field == field], fired, drifting)


def plot(
    result: BacktestResult,
    path: Path,
    threshold: float,
    windows: Sequence[tuple[float, float]] = (),
    stream: str | None = None,
    fields: Sequence[str] = (),
) -> str:
    """Write a PNG (or SVG/PDF, by suffix) for `stream` (default: the first), one value
    panel and one score panel per field. Returns the stream; ChartChoiceError for an
    unknown stream or field (nothing is written then)."""
    stream = choose_stream(result, stream)
    chosen = panels(result, stream, fields)
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        2 * len(chosen),
        1,
        sharex=True,
        figsize=(14, 1 + 5 * len(chosen)),
        height_ratios=[3, 1] * len(chosen),
        squeeze=False,
    )
    for i, panel in enumerate(chosen):
        top, bottom = axes[2 * i][0], axes[2 * i + 1][0]
        _draw(top, bottom, panel, threshold, windows)
        top.set_title(
            f"{stream} {panel.field}: backtest" if len(chosen) > 1 else f"{stream}: backtest"
        )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return stream


def _when(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _draw(
    top: Any, bottom: Any, panel: Panel, threshold: float, windows: Sequence[tuple[float, float]]
) -> None:
    times = [_when(v.ts) for v in panel.rows]
    top.plot(
        times, [v.value for v in panel.rows], linewidth=0.7, color="#1f4e79", label=panel.field
    )
    for start, end in windows:
        for axis in (top, bottom):
            axis.axvspan(_when(start), _when(end), color="#f4b183", alpha=0.35)
    for i, (start, end) in enumerate(panel.drifting):
        label = "drifting" if i == 0 else None
        top.axvspan(_when(start), _when(end), color="#9dc3e6", alpha=0.35, label=label)
    by_ts = {v.ts: v.value for v in panel.rows}
    top.scatter(
        [_when(ts) for ts in panel.fired],
        [by_ts.get(ts, float("nan")) for ts in panel.fired],
        color="#c00000",
        zorder=3,
        s=18,
        label=f"alerts fired ({len(panel.fired)})",
    )
    top.legend(loc="upper left")
    bottom.plot(times, [v.score for v in panel.rows], linewidth=0.7, color="#548235", label="score")
    bottom.axhline(
        threshold, color="#c00000", linestyle="--", linewidth=0.8, label=f"threshold {threshold:g}"
    )
    bottom.set_ylim(0, 1.05)
    bottom.legend(loc="upper left")
