"""A chart of one backtest: value, score, threshold, alerts and labelled windows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from anomalyd.backtest.run import BacktestResult
from anomalyd.domain import AlertStatus


def plot(
    result: BacktestResult,
    path: Path,
    threshold: float,
    windows: Sequence[tuple[float, float]] = (),
    stream: str | None = None,
) -> str:
    """Write a PNG (or SVG/PDF, by suffix) for `stream` (default: the first): its values,
    labelled windows (orange), drifting windows (blue), alerts fired, score and threshold.
    Returns the stream."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    stream = stream or result.verdicts[0].stream
    rows = [v for v in result.verdicts if v.stream == stream]
    times = [datetime.fromtimestamp(v.ts, UTC) for v in rows]
    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(14, 6), height_ratios=[3, 1])
    top.plot(times, [v.value for v in rows], linewidth=0.7, color="#1f4e79", label="value")
    for start, end in windows:
        for axis in (top, bottom):
            axis.axvspan(
                datetime.fromtimestamp(start, UTC),
                datetime.fromtimestamp(end, UTC),
                color="#f4b183",
                alpha=0.35,
            )
    drifting = [r for r in result.drift if r.stream == stream and r.status.value == "drifting"]
    for record in drifting:  # windows inside a confirmed drift episode
        top.axvspan(
            datetime.fromtimestamp(record.start, UTC),
            datetime.fromtimestamp(record.end, UTC),
            color="#9dc3e6",
            alpha=0.35,
            label="drifting" if record is drifting[0] else None,
        )
    fired = [
        a
        for a in result.alerts
        if a.status is AlertStatus.FIRING and a.labels.get("stream") == stream
    ]
    by_ts = {v.ts: v.value for v in rows}
    top.scatter(
        [datetime.fromtimestamp(a.starts_at, UTC) for a in fired],
        [by_ts.get(a.starts_at, float("nan")) for a in fired],
        color="#c00000",
        zorder=3,
        s=18,
        label=f"alerts fired ({len(fired)})",
    )
    top.set_title(f"{stream}: backtest")
    top.legend(loc="upper left")
    bottom.plot(times, [v.score for v in rows], linewidth=0.7, color="#548235", label="score")
    bottom.axhline(
        threshold, color="#c00000", linestyle="--", linewidth=0.8, label=f"threshold {threshold:g}"
    )
    bottom.set_ylim(0, 1.05)
    bottom.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return stream
