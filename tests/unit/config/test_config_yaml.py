"""The config file's YAML is read strictly and within bounds (repeated keys, alias bombs,
size), and no problem report repeats a value that may be a secret."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from anomalyd.cli import EXIT_CONFIG, main
from anomalyd.config import ConfigError, parse_config
from anomalyd.config.yamlfile import MAX_BYTES, YamlProblem, load_yaml
from helpers import YAML_BOMB as BOMB


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, environ={})
    return caught.value.problems


def test_an_alias_bomb_is_refused_at_once() -> None:
    started = time.monotonic()
    [problem] = problems(BOMB)
    assert time.monotonic() - started < 1.0
    assert "aliases expand the document to more than" in problem


def test_a_bomb_appended_to_a_real_config_is_refused_at_once() -> None:
    text = "rules: [{name: High, type: above, threshold: 5}]\nextra:\n" + "".join(
        "  " + line + "\n" for line in BOMB.splitlines()
    )
    started = time.monotonic()
    [problem] = problems(text)
    assert time.monotonic() - started < 1.0
    assert "aliases expand" in problem


def test_a_recursive_alias_is_refused() -> None:
    with pytest.raises(YamlProblem):
        load_yaml("a: &a [1, *a]\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Moderate use of anchors, aliases and merge keys stays allowed.
        ("base: &b {x: 1}\nuse: *b\n", {"base": {"x": 1}, "use": {"x": 1}}),
        ("d: &d {a: 1, b: 2}\nm: {<<: *d, b: 3}\n", {"d": {"a": 1, "b": 2}, "m": {"a": 1, "b": 3}}),
        ("l: &l [1, 2]\nm: [*l, *l]\n", {"l": [1, 2], "m": [[1, 2], [1, 2]]}),
        ("", None),
        ("# nothing\n", None),
    ],
)
def test_ordinary_yaml_loads_as_safe_load_does(text: str, expected: Any) -> None:
    assert load_yaml(text) == expected == yaml.safe_load(text)


@pytest.mark.parametrize(
    ("text", "key", "first", "second"),
    [
        (
            "http:\n  bind: 127.0.0.1\n  api_token: t0ken\nrules: []\nhttp:\n  bind: 0.0.0.0\n",
            "http",
            "line 1",
            "line 5",
        ),
        ("http: {port: 1, port: 2}\n", "port", "line 1, column 8", "line 1, column 17"),
        ("rules:\n  - name: A\n    type: above\n    name: B\n", "name", "line 2", "line 4"),
    ],
)
def test_a_repeated_key_is_refused_naming_both_lines(
    text: str, key: str, first: str, second: str
) -> None:
    [problem] = problems(text)
    assert f"repeated key {key!r}" in problem
    assert f"first at {first}" in problem
    assert f"at {second}" in problem.split(f"first at {first}", 1)[1]


def test_a_file_over_the_size_limit_is_refused() -> None:
    text = "# " + "x" * MAX_BYTES + "\nrules: []\n"
    [problem] = problems(text)
    assert "the limit is" in problem


# --- secrets in problem reports ------------------------------------------------------------

SECRET = "MailPassw0rd!"

SMTP = {"type": "email", "name": "mail", "from": "a@example.com", "to": ["b@example.com"]}


@pytest.mark.parametrize(
    "raw",
    [
        # Credentials pasted into the smarthost, the way a URL would carry them.
        {"receivers": [{**SMTP, "smarthost": f"alerts:{SECRET}@smtp.example.com:587"}]},
        {"receivers": [{**SMTP, "smarthost": f"smtp.example.com:{SECRET}"}]},
        {"receivers": [{**SMTP, "smarthost": "smtp.example.com:25", "from": f"a:{SECRET}@"}]},
        {"receivers": [{**SMTP, "smarthost": "smtp.example.com:25", "to": [f"{SECRET}"]}]},
        {"kafka": {"brokers": [f"user:{SECRET}@kafka.example.com"]}},
        {"receivers": [{"type": "webhook", "name": "w", "url": f"ftp://u:{SECRET}@example.com"}]},
        {"receivers": [{"type": "webhook", "name": "w", "url": f"https://x/{SECRET} y"}]},
        {
            "receivers": [
                {
                    "type": "webhook",
                    "name": "w",
                    "url": "https://example.com/hook",
                    "headers": {"Authorization": f"Bearer {SECRET}\nX-Other: 1"},
                }
            ]
        },
        {"receivers": [{"type": "webhook", "name": "w", "url": "https://x", "secret": SECRET}]},
        {"http": {"feedback_secret": "short-" + SECRET[:3]}},
    ],
)
def test_check_config_never_prints_a_secret(
    raw: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "anomalyd.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["check-config", str(path)]) == EXIT_CONFIG
    output = capsys.readouterr()
    assert "problem(s)" in output.err
    secret = SECRET if "feedback_secret" not in str(raw) else "short-" + SECRET[:3]
    assert secret not in output.err + output.out, output.err
