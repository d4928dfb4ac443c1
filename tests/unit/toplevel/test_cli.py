"""The command line: help everywhere, meaningful exit codes, check-config on the shipped configs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from anomalyd.cli import EXIT_CONFIG, EXIT_OK, main
from helpers import REPO

SHIPPED_CONFIGS = sorted((REPO / "config").glob("*.yaml"))


def test_the_repo_ships_config_examples() -> None:
    assert SHIPPED_CONFIGS, "config/ holds the documented examples"


@pytest.mark.parametrize("path", SHIPPED_CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_passes_check_config(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", str(path)]) == EXIT_OK
    assert f"{path}: ok" in capsys.readouterr().out


def test_check_config_lists_every_problem_and_exits_78(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "app: {idd: x}\n"
        "kafka: {brokers: [nohost]}\n"
        "rules:\n"
        "  - {name: a, type: above}\n"
        "  - {name: b, type: absence, for: 5q}\n"
        "receivers: [{type: webhook, name: w, url: '${ANOMALYD_TEST_UNSET_VAR}'}]\n"
    )
    assert main(["check-config", str(bad)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert f"{bad}: 6 problem(s)" in err
    for expected in (
        "app.idd: Extra inputs are not permitted",
        "kafka.brokers:",
        "rules[0].threshold: Field required",
        "rules[1].for:",
        "receivers[0].url: environment variable ANOMALYD_TEST_UNSET_VAR is not set",
    ):
        assert expected in err


def test_a_missing_config_file_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["worker", "--config", str(tmp_path / "nope.yaml")]) == EXIT_CONFIG
    assert "cannot read the config file" in capsys.readouterr().err


def test_check_config_reports_each_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("rules: []\n")
    bad.write_text("rules: [{name: x}]\n")
    assert main(["check-config", str(good), str(bad)]) == EXIT_CONFIG
    captured = capsys.readouterr()
    assert f"{good}: ok" in captured.out
    assert f"{bad}: 1 problem(s)" in captured.err


@pytest.mark.parametrize(
    "command",
    [[], ["worker"], ["check-config"], ["broker"], ["demo"], ["send"], ["routes", "test"]],
)
def test_help_works_for_every_command(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "anomalyd", *command, "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "usage: anomalyd" in result.stdout


def test_usage_errors_exit_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "anomalyd", "no-such-command"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2


# --- config problems in one round, blamed on their source -------------------------------------

SIX_MISTAKES = """\
app:
  idd: x
rules:
  - {name: a, type: absence, for: 5q}
receivers:
  - type: email
    name: mail
    smarthost: 127.0.0.1:2525
    from: anomalyd@example.com
    to: [oncall@example.com]
    subject: "{{ alerts | nosuchfilter }}"
route:
  receiver: pager
"""


def test_six_mistakes_of_six_kinds_are_all_reported_in_one_run_with_their_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A schema problem no longer hides the cross references and the receivers' checks;
    each problem names the line, the environment variable or the --set behind it."""
    path = tmp_path / "my.yaml"
    path.write_text(SIX_MISTAKES)
    monkeypatch.setenv("ANOMALYD_KAFKA__BROKERS", "kafka:9092")
    code = main(["check-config", str(path), "--set", "model.threshold=high"])
    err = capsys.readouterr().err
    assert code == EXIT_CONFIG
    assert f"{path}: 6 problem(s)" in err, err
    for expected in (
        "app.idd: Extra inputs are not permitted (config line 2)",
        "rules[0].for: Value error, '5q' is not a duration",
        "(config line 4)",
        "kafka.brokers: a list is expected: in the environment write it as JSON, e.g. "
        'ANOMALYD_KAFKA__BROKERS=\'["kafka-1:9092", "kafka-2:9092"]\' '
        "(from the environment: ANOMALYD_KAFKA__BROKERS)",
        "model.threshold: Input should be a valid number",
        "(from --set model.threshold)",
        "route.receiver: receiver 'pager' is not defined (receivers: mail) (config line 13)",
        "receivers[0].subject: ",
        "nosuchfilter",
    ):
        assert expected in err, expected


def test_an_override_of_an_unknown_key_is_blamed_on_the_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "my.yaml"
    path.write_text("http: {port: 7000}\n")
    monkeypatch.setenv("ANOMALYD_HTTP__PROT", "7001")
    monkeypatch.setenv("ANOMALYD_HTPP__PORT", "7001")
    assert main(["check-config", str(path)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert (
        "http.prot: Extra inputs are not permitted (from the environment: ANOMALYD_HTTP__PROT)"
        in err
    )
    assert "ANOMALYD_HTPP__PORT: there is no section 'htpp' to override" in err


def test_an_empty_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n")
    assert main(["check-config", str(path)]) == EXIT_CONFIG
    assert "holds no config" in capsys.readouterr().err


SECRET_RECEIVER = """\
kafka: {brokers: embedded, embedded: {port: 1}}
rules: [{name: high, type: above, threshold: 5}]
receivers:
  - {name: oncall, type: webhook, url: "${ANOMALYD_TEST_HOOK_URL}"}
"""


def test_backtest_runs_without_the_receivers_secrets_the_worker_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(SECRET_RECEIVER)
    data = tmp_path / "s.csv"
    data.write_text("timestamp,value\n1796000000,1\n1796000060,9\n")
    out = tmp_path / "out"
    assert main(["backtest", "--config", str(config), str(data), "--out", str(out)]) == EXIT_OK
    assert "alerts fired: 1" in capsys.readouterr().out
    assert main(["worker", "--config", str(config)]) == EXIT_CONFIG
    assert "ANOMALYD_TEST_HOOK_URL is not set" in capsys.readouterr().err


def test_backtest_without_a_config_file_runs_on_the_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no config/anomalyd.yaml here
    monkeypatch.delenv("ANOMALYD_CONFIG", raising=False)
    data = tmp_path / "s.csv"
    data.write_text("timestamp,value\n1796000000,1\n1796000060,9\n")
    assert main(["backtest", str(data), "--out", str(tmp_path / "out")]) == EXIT_OK
    captured = capsys.readouterr()
    assert "running on the defaults" in captured.err
    assert "events: 2 over 1 stream(s)" in captured.out
    # Given explicitly, a missing file is still an error.
    assert main(["backtest", "--config", "nope.yaml", str(data)]) == EXIT_CONFIG
