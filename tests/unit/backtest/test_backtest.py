"""`anomalyd backtest`: the worker's pipeline over a file, its outputs and its summary."""

from __future__ import annotations

import csv
import json
import random
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from anomalyd.backtest import backtest, read_events
from anomalyd.cli import main
from anomalyd.config import parse_config
from anomalyd.ingest import InvalidEvent, Limits

T0 = datetime(2026, 1, 5, tzinfo=UTC).timestamp()
CONFIG = """
rules:
  - {name: High, type: above, threshold: 200, severity: critical}
  - {name: Quiet, type: absence, for: 10m}
model: {mode: hybrid, warmup: 100}
drift: {enabled: false}
"""


def nab_csv(path: Path, values: list[float], step: float = 300.0) -> Path:
    """A file in NAB's format: naive UTC timestamps."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value"])
        for i, value in enumerate(values):
            stamp = datetime.fromtimestamp(T0 + i * step, UTC).strftime("%Y-%m-%d %H:%M:%S")
            writer.writerow([stamp, value])
    return path


def noisy(n: int, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [100 + rng.gauss(0, 3) for _ in range(n)]


def test_a_csv_is_judged_by_the_same_rules_and_model(tmp_path: Path) -> None:
    values = noisy(400)
    values[300] = 500.0
    config = parse_config(CONFIG)
    result = backtest(config, read_events(nab_csv(tmp_path / "cpu.csv", values), Limits()))
    assert result.events == 400
    assert len(result.verdicts) == 400
    assert {v.stream for v in result.verdicts} == {"cpu"}  # the file name when no column
    fired = [(a.labels["alertname"], a.starts_at) for a in result.firing()]
    # One page for the incident: the model keeps quiet while the threshold rule pages.
    assert fired == [("High", T0 + 300 * 300)]
    assert result.verdicts[300].score == 1.0
    assert result.verdicts[300].rule_hits == ("High",)


def test_absence_ticks_in_event_time(tmp_path: Path) -> None:
    path = tmp_path / "hb.csv"
    values = noisy(20)
    nab_csv(path, values, step=60.0)
    with path.open("a") as handle:  # one more point after a 2-hour silence
        late = datetime.fromtimestamp(T0 + 19 * 60 + 7200, UTC).strftime("%Y-%m-%d %H:%M:%S")
        handle.write(f"{late},100\n")
    result = backtest(parse_config(CONFIG), read_events(path, Limits()))
    quiet = [a for a in result.alerts if a.labels["alertname"] == "Quiet"]
    assert [a.status.value for a in quiet] == ["firing", "resolved"]
    assert quiet[0].starts_at == T0 + 19 * 60 + 600  # last seen + for
    assert quiet[1].ends_at == T0 + 19 * 60 + 7200


def test_jsonl_uses_the_worker_parser_and_counts_invalid_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    lines = [orjson.dumps({"stream": "a", "ts": T0 + i, "value": 1.0}) for i in range(5)] + [
        b'{"stream": "a", "value": "x", "ts": 1}',
        b"not json",
        b"",
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    rows = list(read_events(path, Limits()))
    assert sum(isinstance(r, InvalidEvent) for r in rows) == 2
    result = backtest(parse_config(CONFIG), iter(rows))
    assert result.events == 5
    assert dict(result.invalid) == {"bad_value": 1, "invalid_json": 1}


def test_a_csv_without_the_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("time,val\n1,2\n")
    with pytest.raises(ValueError, match="timestamp,value"):
        list(read_events(path, Limits()))


def test_the_command_writes_scores_alerts_a_plot_and_quality(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    values = noisy(400)
    values[300] = 500.0
    (tmp_path / "data" / "cat").mkdir(parents=True)
    data = nab_csv(tmp_path / "data" / "cat" / "cpu.csv", values)
    spike = T0 + 300 * 300

    def stamp(ts: float) -> str:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    window = [stamp(spike - 1800), stamp(spike + 1800)]
    labels = tmp_path / "labels" / "windows.json"
    labels.parent.mkdir()
    labels.write_text(json.dumps({"cat/cpu.csv": [window]}))
    config = tmp_path / "anomalyd.yaml"
    config.write_text(CONFIG)
    out, plot = tmp_path / "out", tmp_path / "chart.png"
    code = main(
        [
            "backtest",
            str(data),
            "--config",
            str(config),
            "--out",
            str(out),
            "--plot",
            str(plot),
            "--labels",
            str(labels),
            "--set",
            "rules[0].threshold=1000",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "events: 400 over 1 stream(s)" in printed
    assert "AnomalyDetected  1" in printed  # --set lifted the rule above the spike
    assert "High" not in printed
    assert "pages: 1 (0.722 per stream-day)" in printed  # 400 rows of 5 minutes
    assert "recall (windows paged): 100.0%" in printed
    assert "NAB standard, pages:" in printed
    with (out / "scores.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 400
    assert rows[0].keys() >= {"stream", "ts", "value", "score", "model_score", "rule_hits"}
    alerts = [orjson.loads(line) for line in (out / "alerts.jsonl").read_bytes().splitlines()]
    assert [a["status"] for a in alerts] == ["firing", "resolved"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_missing_input_file_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "anomalyd.yaml"
    config.write_text(CONFIG)
    assert main(["backtest", str(tmp_path / "nope.csv"), "--config", str(config)]) == 1
    assert "no such file" in capsys.readouterr().err
