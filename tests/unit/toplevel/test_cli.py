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


@pytest.mark.parametrize("command", [[], ["worker"], ["check-config"], ["broker"], ["demo"]])
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
