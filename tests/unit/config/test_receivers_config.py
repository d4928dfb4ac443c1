"""Receiver config: every type parses, every mistake is reported at its path, and secrets
never show in reprs or in error messages."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import aiohttp
import pytest

from anomalyd.clock import ManualClock
from anomalyd.config import (
    AlertmanagerReceiver,
    ConfigError,
    EmailReceiver,
    LogReceiver,
    WebhookReceiver,
    parse_config,
)
from anomalyd.notify import (
    AlertmanagerNotifier,
    EmailNotifier,
    LogNotifier,
    WebhookNotifier,
    build_notifiers,
)
from helpers import REPO

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
OLD = "whsec_" + base64.b64encode(bytes(range(1, 33))).decode()

ALL_TYPES = f"""
receivers:
  - name: oncall
    type: webhook
    url: https://hooks.example.com/anomalyd
    secret: "${{HOOK_SECRET}}"
    bearer_token: "${{HOOK_TOKEN}}"
    headers: {{X-Team: core}}
    timeout: 5s
    max_alerts: 20
  - name: rotating
    type: webhook
    url: http://127.0.0.1:9000/hook
    secrets: ["{SECRET}", "{OLD}"]
    basic_auth: {{username: anomalyd, password: "${{HOOK_PASSWORD}}"}}
  - name: mail
    type: email
    smarthost: smtp.example.com:587
    from: "anomalyd <alerts@example.com>"
    to: [oncall@example.com]
    auth: {{username: alerts@example.com, password: "${{SMTP_PASSWORD}}"}}
    subject: "[{{{{ status|upper }}}}] {{{{ group_labels.alertname }}}}"
  - name: am
    type: alertmanager
    url: http://alertmanager:9093
    firing_ttl: 10m
  - name: console
    type: log
"""
ENVIRON = {
    "HOOK_SECRET": SECRET,
    "HOOK_TOKEN": "tok-123456",
    "HOOK_PASSWORD": "hook-pw-654321",
    "SMTP_PASSWORD": "smtp-pw-987654",
}


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse_config(text, environ=environ or {})
    return error.value.problems


def one_receiver(fields: str) -> str:
    return f"receivers:\n  - {{{fields}}}\n"


def test_every_type_parses() -> None:
    config = parse_config(ALL_TYPES, environ=ENVIRON)
    oncall, rotating, mail, am, console = config.receivers
    assert isinstance(oncall, WebhookReceiver)
    assert [s.get_secret_value() for s in oncall.signing_secrets] == [SECRET]
    assert oncall.bearer_token is not None
    assert oncall.bearer_token.get_secret_value() == "tok-123456"
    assert (oncall.timeout, oncall.max_alerts, oncall.headers) == (5.0, 20, {"X-Team": "core"})
    assert isinstance(rotating, WebhookReceiver)
    assert [s.get_secret_value() for s in rotating.signing_secrets] == [SECRET, OLD]
    assert isinstance(mail, EmailReceiver)
    assert (mail.host, mail.port, mail.tls, mail.hello) == (
        "smtp.example.com",
        587,
        "starttls",
        "localhost",
    )
    assert mail.from_ == "anomalyd <alerts@example.com>"
    assert mail.auth is not None
    assert mail.auth.password.get_secret_value() == "smtp-pw-987654"
    assert isinstance(am, AlertmanagerReceiver)
    assert am.firing_ttl == 600.0
    assert isinstance(console, LogReceiver)


def test_secrets_never_show() -> None:
    config = parse_config(ALL_TYPES, environ=ENVIRON)
    shown = repr(config) + str(config) + repr(config.receivers) + str(config.model_dump())
    for secret in (SECRET, OLD, *ENVIRON.values()):
        assert secret not in shown
    assert "**********" in shown


async def test_build_notifiers_makes_one_per_receiver_in_order() -> None:
    config = parse_config(ALL_TYPES, environ=ENVIRON)
    async with aiohttp.ClientSession() as session:
        notifiers = build_notifiers(config, session, ManualClock())
    assert [type(n) for n in notifiers] == [
        WebhookNotifier,
        WebhookNotifier,
        EmailNotifier,
        AlertmanagerNotifier,
        LogNotifier,
    ]
    assert [n.name for n in notifiers] == ["oncall", "rotating", "mail", "am", "console"]


@pytest.mark.parametrize(
    ("fields", "path", "message"),
    [
        ("name: w, type: webhook, url: 'ftp://x'", "receivers[0].url", "http:// or https://"),
        ("name: w, type: webhook, url: 'http://'", "receivers[0].url", "no host"),
        ("name: w, type: webhook, url: 'http://a b'", "receivers[0].url", "whitespace"),
        ("name: w, type: webhook, url: 'http://x', secret: abc", "receivers[0].secret", "whsec_"),
        (
            "name: w, type: webhook, url: 'http://x', secret: 'whsec_not base64!'",
            "receivers[0].secret",
            "not base64",
        ),
        (
            "name: w, type: webhook, url: 'http://x', secret: whsec_c2hvcnQ=",
            "receivers[0].secret",
            "24..64 bytes, not 5",
        ),
        (
            f"name: w, type: webhook, url: 'http://x', secrets: ['{SECRET}', whsec_c2hvcnQ=]",
            "receivers[0].secrets[1]",
            "24..64 bytes",
        ),
        (
            f"name: w, type: webhook, url: 'http://x', secret: '{SECRET}', secrets: ['{OLD}']",
            "receivers[0]",
            "not both",
        ),
        (
            "name: w, type: webhook, url: 'http://x', bearer_token: t,"
            " basic_auth: {username: u, password: p}",
            "receivers[0]",
            "at most one",
        ),
        (
            "name: w, type: webhook, url: 'http://x', bearer_token: t, headers: {authorization: x}",
            "receivers[0]",
            "at most one",
        ),
        (
            "name: w, type: webhook, url: 'http://x', headers: {webhook-id: x}",
            "receivers[0].headers",
            "set by anomalyd",
        ),
        (
            "name: w, type: webhook, url: 'http://x', headers: {'a b': x}",
            "receivers[0].headers",
            "not a valid header name",
        ),
        (
            "name: w, type: webhook, url: 'http://x', headers: {X-A: \"1\\r\\nX-B: 2\"}",
            "receivers[0].headers",
            "one line",
        ),
        (
            "name: m, type: email, smarthost: 'smtp:25', from: nobody, to: [a@b.c]",
            "receivers[0].from",
            "not an email address",
        ),
        (
            "name: m, type: email, smarthost: 'smtp:25', from: a@b.c, to: [a@b.c, 'x y@z']",
            "receivers[0].to[1]",
            "not an email address",
        ),
        (
            "name: m, type: email, smarthost: 'smtp:25', from: a@b.c, to: []",
            "receivers[0].to",
            "at least 1",
        ),
        (
            "name: m, type: email, smarthost: smtp.example.com, from: a@b.c, to: [a@b.c]",
            "receivers[0].smarthost",
            "host:port",
        ),
        (
            "name: m, type: email, smarthost: 'smtp:70000', from: a@b.c, to: [a@b.c]",
            "receivers[0].smarthost",
            "host:port",
        ),
        (
            "name: m, type: email, smarthost: 'smtp:25', from: a@b.c, to: [a@b.c], tls: none,"
            " auth: {username: u, password: p}",
            "receivers[0]",
            "in clear",
        ),
        (
            "name: m, type: email, smarthost: 'smtp:25', from: a@b.c, to: [a@b.c],"
            " ca_file: /nonexistent/ca.pem",
            "receivers[0].ca_file",
            "is not a file",
        ),
        (
            "name: m, type: email, smarthost: 'smtp:25', from: a@b.c, to: [a@b.c],"
            " subject: '{{ status '",
            "receivers[0].subject",
            "not a valid template",
        ),
        (
            "name: m, type: email, smarthost: 'smtp:25', from: a@b.c, to: [a@b.c], tls: maybe",
            "receivers[0].tls",
            "",
        ),
        (
            "name: m, type: email, smarthost: 'smtp:25', from: a@b.c, to: [a@b.c], cc: [x@y.z]",
            "receivers[0].cc",
            "Extra inputs",
        ),
        (
            "name: a, type: alertmanager, url: 'http://am', firing_ttl: 0",
            "receivers[0].firing_ttl",
            "",
        ),
        ("name: a, type: pagerduty", "receivers[0]", ""),
    ],
)
def test_mistakes_are_reported_at_their_path(fields: str, path: str, message: str) -> None:
    listed = problems(one_receiver(fields))
    assert any(p.startswith(f"{path}: ") and message in p for p in listed), listed


@pytest.mark.parametrize(
    "address",
    ["a@b.c", "Alerts <alerts@example.com>", '"On Call" <oncall+anomalyd@ops.example.com>'],
)
def test_valid_addresses(address: str) -> None:
    fields = f"name: m, type: email, smarthost: 'smtp:25', from: '{address}', to: ['{address}']"
    [mail] = parse_config(one_receiver(fields), environ={}).receivers
    assert isinstance(mail, EmailReceiver)
    assert mail.to == [address]


@pytest.mark.parametrize(
    ("smarthost", "host", "port"),
    [("smtp.example.com:465", "smtp.example.com", 465), ("[::1]:25", "::1", 25)],
)
def test_smarthost(smarthost: str, host: str, port: int) -> None:
    fields = f"name: m, type: email, smarthost: '{smarthost}', from: a@b.c, to: [a@b.c]"
    [mail] = parse_config(one_receiver(fields), environ={}).receivers
    assert isinstance(mail, EmailReceiver)
    assert (mail.host, mail.port) == (host, port)


def test_a_private_ca_file(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    fields = f"name: m, type: email, smarthost: 'smtp:25', from: a@b.c, to: [a@b.c], ca_file: {ca}"
    [mail] = parse_config(one_receiver(fields), environ={}).receivers
    assert isinstance(mail, EmailReceiver)
    assert mail.ca_file == str(ca)


def test_a_bad_secret_is_not_echoed() -> None:
    leaked = "whsec_" + base64.b64encode(b"sixteen bytes!!!").decode()
    listed = problems(one_receiver(f"name: w, type: webhook, url: 'http://x', secret: '{leaked}'"))
    assert listed
    assert all(leaked not in p and leaked[6:] not in p for p in listed)


def test_the_commented_receiver_examples_in_the_shipped_config_are_valid() -> None:
    """config/anomalyd.yaml shows every receiver type commented out; uncommented, it holds."""
    text = (REPO / "config" / "anomalyd.yaml").read_text()
    start, end = text.index("\nreceivers:\n"), text.index("\ndelivery:\n")
    lines = []
    for line in text[start:end].splitlines():
        example = re.match(r"^  # (- name: .*|  \S.*)$", line)
        if example:
            lines.append("  " + example.group(1))
        elif not line.lstrip().startswith("#"):
            lines.append(line)
    environ = {"ONCALL_WEBHOOK_SECRET": SECRET, "ONCALL_TOKEN": "t", "SMTP_PASSWORD": "p"}
    config = parse_config(text[:start] + "\n".join(lines) + text[end:], environ=environ)
    kinds = {receiver.type for receiver in config.receivers}
    assert kinds == {"log", "webhook", "email", "alertmanager"}
