"""Backtest: replay history through the worker's detection code, with no broker."""

from anomalyd.backtest.reader import count_rows, parse_csv_time, read_events
from anomalyd.backtest.report import summary_lines, write_outputs
from anomalyd.backtest.run import BacktestResult, backtest, with_progress

__all__ = [
    "BacktestResult",
    "backtest",
    "count_rows",
    "parse_csv_time",
    "read_events",
    "summary_lines",
    "with_progress",
    "write_outputs",
]
