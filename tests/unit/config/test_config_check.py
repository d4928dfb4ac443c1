"""What check-config accepts, the worker runs: receivers are built as the worker builds
them (certificate files loaded) and email templates are compiled and rendered against
sample alerts with StrictUndefined, at check-config, at start and on reload alike."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from anomalyd.cli import EXIT_CONFIG, EXIT_OK, main
from anomalyd.config import ConfigError, parse_config
from anomalyd.notify.receivers import receiver_problems
from anomalyd.validate import load_checked


@pytest.fixture(scope="module")
def ca_pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("ca")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test CA"],
        cwd=where, check=True, capture_output=True,
    )  # fmt: skip
    return where / "ca.pem"


def mail(**fields: Any) -> dict[str, Any]:
    return {
        "type": "email",
        "name": "mail",
        "smarthost": "127.0.0.1:2525",
        "from": "anomalyd@example.com",
        "to": ["oncall@example.com"],
        **fields,
    }


def problems_of(*receivers: dict[str, Any]) -> list[str]:
    config = parse_config(yaml.safe_dump({"receivers": list(receivers)}), environ={})
    return receiver_problems(config)


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"subject": "{{ common_labels.alertname }} on {{ alerts|length }} ({{ status }})"},
        {"text": "{% for a in firing %}{{ a.labels.stream }}{{ a.annotations.value }}{% endfor %}"},
        # Labels and annotations are the user's: any key of theirs renders.
        {"text": "{% for a in alerts %}{{ a.labels.team }}{{ a.annotations.runbook }}{% endfor %}"},
        {"subject": "{{ group_labels.region | default('all') }} {{ notification_id }}"},
        {"html": "<a href='{{ external_url }}'>{{ receiver }}</a>{{ common_annotations.x }}"},
        {"text": "{% for a in resolved %}{{ a.ends_at }} {{ a.fingerprint }}{% endfor %}"},
    ],
)
def test_good_templates_pass(fields: dict[str, Any]) -> None:
    assert problems_of(mail(**fields)) == []


@pytest.mark.parametrize(
    ("fields", "where", "expected"),
    [
        ({"subject": "{{ status|shout }}"}, "subject", "No filter named 'shout'"),
        ({"text": "{% if alerts is prime %}x{% endif %}"}, "text", "No test named 'prime'"),
        ({"html": "{{ alrts|length }}"}, "html", "'alrts' is undefined"),
        ({"text": "{% for a in alerts %}{{ a.startsat }}{% endfor %}"}, "text", "startsat"),
        ({"subject": "{{ commn_labels.env }}"}, "subject", "'commn_labels' is undefined"),
        ({"text": "{{ alerts.append(1) }}"}, "text", "fails on a sample alert"),
        ({"text": "{{ 1 / 0 }}"}, "text", "division by zero"),
    ],
)
def test_bad_templates_are_problems_naming_the_part(
    fields: dict[str, Any], where: str, expected: str
) -> None:
    [problem] = problems_of(mail(**fields))
    assert problem.startswith(f"receivers[0].{where}: "), problem
    assert expected in problem


def test_a_ca_file_that_is_not_a_certificate_is_a_problem(tmp_path: Path, ca_pem: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    [problem] = problems_of(mail(ca_file=str(junk)))
    assert problem.startswith("receivers[0].ca_file: not PEM certificates"), problem
    assert problems_of(mail(ca_file=str(ca_pem))) == []


def test_every_receiver_is_checked(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("")
    found = problems_of(
        {"type": "log", "name": "log"},
        mail(name="a", ca_file=str(junk)),
        {"type": "webhook", "name": "w", "url": "https://example.com/hook"},
        mail(name="b", text="{{ nope.x }}"),
    )
    assert [p.split(":", 1)[0] for p in found] == ["receivers[1].ca_file", "receivers[3].text"]


def test_check_config_refuses_what_the_worker_cannot_build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    path = tmp_path / "anomalyd.yaml"
    raw = {"receivers": [mail(ca_file=str(junk), subject="{{ status|shout }}")]}
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as caught:
        load_checked(path, environ={})
    assert [p.split(":", 1)[0] for p in caught.value.problems] == ["receivers[0].subject"]
    assert main(["check-config", str(path)]) == EXIT_CONFIG
    assert "receivers[0].subject: the template does not compile" in capsys.readouterr().err

    path.write_text(yaml.safe_dump({"receivers": [mail(ca_file=str(junk))]}))
    assert main(["check-config", str(path)]) == EXIT_CONFIG
    assert "receivers[0].ca_file: not PEM certificates" in capsys.readouterr().err

    path.write_text(yaml.safe_dump({"receivers": [mail()]}))
    assert main(["check-config", str(path)]) == EXIT_OK
