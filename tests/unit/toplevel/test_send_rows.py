"""`anomalyd send` reading: rows checked as the worker checks them, keyed by stream, the
bad ones named by file and line; and `anomalyd routes test`."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest

from anomalyd.cli import main
from anomalyd.ingest import Limits
from anomalyd.send import Outgoing, Skipped, csv_rows, input_format, jsonl_rows

NOW = 1_797_000_000.0
LIMITS = Limits(max_future_skew=300.0)


def test_jsonl_lines_go_out_byte_for_byte_keyed_by_stream() -> None:
    lines = [
        b'{"stream": "a.b", "ts": 1796000000, "value": 1.5}\n',
        b"\n",
        b'{"stream": "c", "fields": {"x": 1, "y": 2}, "labels": {"region": "eu"}}\n',
    ]
    rows = list(jsonl_rows(lines, "in.jsonl", LIMITS, NOW))
    assert rows == [
        Outgoing(b"a.b", b'{"stream": "a.b", "ts": 1796000000, "value": 1.5}'),
        Outgoing(b"c", b'{"stream": "c", "fields": {"x": 1, "y": 2}, "labels": {"region": "eu"}}'),
    ]


def test_bad_jsonl_lines_are_skipped_with_their_line_and_reason() -> None:
    lines = [b'{"stream": "a", "value": 1}', b"{nope", b'{"stream": "a", "valu": 2}']
    rows = list(jsonl_rows(lines, "in.jsonl", LIMITS, NOW))
    assert isinstance(rows[0], Outgoing)
    assert rows[1] == Skipped("in.jsonl:2", rows[1].reason)  # type: ignore[union-attr]
    assert rows[1].reason.startswith("invalid_json")  # type: ignore[union-attr]
    assert rows[2].where == "in.jsonl:3"  # type: ignore[union-attr]
    assert rows[2].reason.startswith("unknown_field")  # type: ignore[union-attr]


def test_an_event_from_the_future_is_caught_before_sending() -> None:
    [row] = jsonl_rows([b'{"stream": "a", "ts": 1797009999, "value": 1}'], "-", LIMITS, NOW)
    assert isinstance(row, Skipped)
    assert row.reason.startswith("future_ts")


def test_csv_rows_become_events_of_the_stream_column_or_the_default() -> None:
    text = io.StringIO(
        "timestamp,value,stream\n"
        "2026-12-01 10:00:00,12.5,cpu.load\n"
        "1796000000,3,\n"
        "2026-12-01 10:00:02,abc,cpu.load\n"
    )
    rows = list(csv_rows(text, "x.csv", "fallback", LIMITS, NOW))
    first, second, bad = rows
    assert isinstance(first, Outgoing)
    assert isinstance(second, Outgoing)
    assert first.key == b"cpu.load"
    assert orjson.loads(first.value) == {
        "stream": "cpu.load",
        "ts": "2026-12-01T10:00:00.000Z",
        "value": 12.5,
    }
    assert second.key == b"fallback"
    assert bad == Skipped("x.csv:4", bad.reason)
    assert "abc" in bad.reason


def test_a_csv_without_its_columns_is_one_problem() -> None:
    rows = list(csv_rows(io.StringIO("time,v\n1,2\n"), "x.csv", "s", LIMITS, NOW))
    assert rows == [Skipped("x.csv:1", "a CSV needs the columns timestamp,value[,stream]")]


@pytest.mark.parametrize(
    ("name", "chosen", "expected"),
    [
        ("-", None, "jsonl"),
        ("a.ndjson", None, "jsonl"),
        ("a.csv", None, "csv"),
        ("-", "csv", "csv"),
    ],
)
def test_the_format_follows_the_suffix_unless_chosen(
    name: str, chosen: str | None, expected: str
) -> None:
    assert input_format(name, chosen) == expected


def test_send_of_a_missing_file_fails_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("rules: []\n")
    assert main(["send", "--config", str(config), str(tmp_path / "nope.csv")]) == 1
    assert "no such file" in capsys.readouterr().err


# --- routes test ------------------------------------------------------------------------------

ROUTED = """
receivers:
  - {name: console, type: log}
  - {name: pager, type: log}
  - {name: payments, type: log}
route:
  receiver: console
  group_by: [alertname]
  routes:
    - receiver: pager
      matchers: ['severity="critical"']
      group_by: [alertname, stream]
      continue: true
    - receiver: payments
      matchers: ['team="payments"']
"""


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (["severity=critical", "team=payments"], "pager,payments"),
        (["severity=critical"], "pager"),
        (['team="payments"'], "payments"),
        ([], "console"),
    ],
)
def test_routes_test_prints_the_receivers_reached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], labels: list[str], expected: str
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(ROUTED)
    assert main(["routes", "test", "--config", str(config), *labels]) == 0
    assert capsys.readouterr().out.splitlines()[0] == expected


def test_routes_test_verifies_and_explains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(ROUTED)
    args = ["routes", "test", "--config", str(config), "severity=critical", "alertname=X"]
    assert main([*args, "--verify-receivers", "pager", "-v"]) == 0
    out = capsys.readouterr().out
    assert (
        '  route.routes[0]: receiver pager, group {}/{severity="critical"}:{alertname="X"}' in out
    )
    assert main([*args, "--verify-receivers", "pager,console"]) == 1
    assert "expected receivers pager,console, got pager" in capsys.readouterr().err
    assert main(["routes", "test", "--config", str(config), "not a label"]) == 2
