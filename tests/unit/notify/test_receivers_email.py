"""The email receiver against a real SMTP server (aiosmtpd on 127.0.0.1): plain, STARTTLS
and implicit TLS with a throwaway CA, AUTH, the message it sends, header injection, and
how SMTP failures are classified."""

from __future__ import annotations

import email
import email.policy
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from jinja2.exceptions import SecurityError

from anomalyd.alert import firing, resolved
from anomalyd.clock import ManualClock
from anomalyd.config import EmailReceiver
from anomalyd.notify import DeliveryError, EmailNotifier
from anomalyd.notify.notification import Notification
from anomalyd.notify.receivers.templates import EmailTemplates, one_line
from anomalyd.worker.kafka.admin import free_port

EXTERNAL = "http://anomalyd.test:6066"
T0 = 1_795_341_600.0  # 2026-11-22T10:00:00Z
INJECTION = "x\r\nBcc: evil@example.com"


def notification(labels: dict[str, str] | None = None, **annotations: str) -> Notification:
    labels = {"alertname": "CheckoutLatencyHigh", "stream": "checkout", **(labels or {})}
    annotations = {"summary": "Checkout latency 1250 ms", "value": "1250", **annotations}
    alert = firing(labels, annotations, T0, EXTERNAL)
    other = resolved(firing({**labels, "region": "eu"}, annotations, T0, EXTERNAL), T0 + 60)
    return Notification(
        receiver="mail",
        group_key='{}:{alertname="CheckoutLatencyHigh"}',
        group_labels={"alertname": labels["alertname"]},
        alerts=(alert, other),
        notification_id="0f3a9c2b",
    )


# --- a real SMTP server -------------------------------------------------------------------------


@dataclass
class Inbox:
    """aiosmtpd handler: keeps what it accepts; answers RCPT with `rcpt_reply` if set."""

    rcpt_reply: str | None = None
    envelopes: list[Envelope] = field(default_factory=list)
    tls_used: list[bool] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.rcpt_reply is not None:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        self.tls_used.append(session.ssl is not None)
        return "250 Message accepted"

    def message(self) -> EmailMessage:
        [envelope] = self.envelopes
        assert isinstance(envelope.content, bytes)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost (openssl CLI)."""
    where = tmp_path_factory.mktemp("pki")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=anomalyd test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=where)  # fmt: skip
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=localhost", cwd=where)  # fmt: skip
    (where / "ext.cnf").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
    )
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf",
             cwd=where)  # fmt: skip
    return Pki(where / "ca.pem", where / "server.pem", where / "server.key")


@dataclass
class Server:
    port: int
    inbox: Inbox
    logins: list[tuple[str, str]]


def _authenticator(logins: list[tuple[str, str]]) -> Any:
    def check(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login.decode(), data.password.decode()))
        ok = (data.login, data.password) == (b"alerts", b"s3cr3t")
        return AuthResult(success=ok, handled=False)  # not handled: the server answers 535

    return check


@pytest.fixture
def smtp_server(request: pytest.FixtureRequest, pki: Pki) -> Iterator[Server]:
    """An SMTP server; `@pytest.mark.parametrize("smtp_server", [mode], indirect=True)` picks
    plain (default), starttls (STARTTLS + AUTH required) or tls (implicit TLS)."""
    mode = getattr(request, "param", "plain")
    inbox, logins, port = Inbox(), [], free_port()
    options: dict[str, Any] = {"server_hostname": "localhost", "ready_timeout": 10}
    if mode == "starttls":
        options |= {
            "tls_context": pki.server_context(),
            "require_starttls": True,
            "authenticator": _authenticator(logins),
            "auth_required": True,
        }
    if mode == "tls":
        options["ssl_context"] = pki.server_context()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield Server(port, inbox, logins)
    finally:
        controller.stop()


def receiver(port: int, **extra: Any) -> EmailReceiver:
    return EmailReceiver.model_validate(
        {
            "type": "email",
            "name": "mail",
            "smarthost": f"127.0.0.1:{port}",
            "from": "anomalyd <alerts@example.com>",
            "to": ["oncall@example.com", "Team Lead <lead@example.com>"],
            "tls": "none",
            "timeout": "5s",
            **extra,
        }
    )


def notifier(config: EmailReceiver) -> EmailNotifier:
    return EmailNotifier(config, EXTERNAL, ManualClock(T0 + 5))


# --- what arrives -------------------------------------------------------------------------------


async def test_plain_delivery_headers_and_parts(smtp_server: Server) -> None:
    await notifier(receiver(smtp_server.port)).send(notification())

    [envelope] = smtp_server.inbox.envelopes
    assert envelope.mail_from == "alerts@example.com"
    assert envelope.rcpt_tos == ["oncall@example.com", "lead@example.com"]
    message = smtp_server.inbox.message()
    assert message["Subject"] == "[FIRING:1] CheckoutLatencyHigh"
    assert message["From"] == "anomalyd <alerts@example.com>"
    assert message["To"] == "oncall@example.com, Team Lead <lead@example.com>"
    assert message["Message-ID"] == f"<0f3a9c2b.{int((T0 + 5) * 1000)}@example.com>"
    assert message["X-Anomalyd-Notification-Id"] == "0f3a9c2b"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"].datetime.timestamp() == T0 + 5
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None
    assert html is not None
    plain, rich = text.get_content(), html.get_content()
    for body in (plain, rich):
        assert "Checkout latency 1250 ms" in body
        assert "2026-11-22T10:00:00.000Z" in body  # startsAt
        assert f"{EXTERNAL}/api/alerts/" in body  # the link back
        assert "checkout" in body
    assert "1 firing, 1 resolved" in plain
    assert "region = eu" in plain
    assert "Ended:   2026-11-22T10:01:00.000Z" in plain
    assert "<table" in rich


@pytest.mark.parametrize("smtp_server", ["starttls"], indirect=True)
async def test_starttls_with_a_private_ca_and_auth(smtp_server: Server, pki: Pki) -> None:
    config = receiver(
        smtp_server.port,
        tls="starttls",
        ca_file=str(pki.ca),
        auth={"username": "alerts", "password": "s3cr3t"},
    )
    await notifier(config).send(notification())
    assert smtp_server.logins == [("alerts", "s3cr3t")]
    assert smtp_server.inbox.tls_used == [True]
    assert smtp_server.inbox.message()["Subject"] == "[FIRING:1] CheckoutLatencyHigh"


@pytest.mark.parametrize("smtp_server", ["tls"], indirect=True)
async def test_implicit_tls(smtp_server: Server, pki: Pki) -> None:
    config = receiver(smtp_server.port, tls="tls", ca_file=str(pki.ca))
    await notifier(config).send(notification())
    assert len(smtp_server.inbox.envelopes) == 1


async def test_a_label_cannot_add_a_header(smtp_server: Server) -> None:
    hostile = notification({"alertname": INJECTION, "team": INJECTION}, summary=INJECTION)
    await notifier(receiver(smtp_server.port)).send(hostile)

    [envelope] = smtp_server.inbox.envelopes
    assert envelope.rcpt_tos == ["oncall@example.com", "lead@example.com"]
    message = smtp_server.inbox.message()
    assert message["Bcc"] is None
    assert message["Subject"] == "[FIRING:1] x Bcc: evil@example.com"
    mine = ["Subject", "From", "To", "Date", "Message-ID", "Auto-Submitted"]
    mine.append("X-Anomalyd-Notification-Id")
    mime = ["Content-Type", "MIME-Version"]
    assert sorted(message.keys()) == sorted([*mine, *mime])  # each once, nothing else
    assert isinstance(envelope.content, bytes)
    head = envelope.content.split(b"\r\n\r\n", 1)[0]
    assert b"\nBcc" not in head


async def test_non_ascii_text_travels_in_7_bits(smtp_server: Server) -> None:
    labels = {"alertname": "Latenz hoch ⚠", "city": "Zürich"}
    await notifier(receiver(smtp_server.port)).send(notification(labels, summary="Größer: 1250"))
    [envelope] = smtp_server.inbox.envelopes
    assert isinstance(envelope.content, bytes)
    assert envelope.content.isascii()
    message = smtp_server.inbox.message()
    assert message["Subject"] == "[FIRING:1] Latenz hoch ⚠"
    for kind in ("plain", "html"):
        part = message.get_body((kind,))
        assert part is not None
        assert "Zürich" in part.get_content()
        assert "Größer: 1250" in part.get_content()


async def test_html_escapes_alert_text(smtp_server: Server) -> None:
    await notifier(receiver(smtp_server.port)).send(notification(summary="<script>x()</script>"))
    html = smtp_server.inbox.message().get_body(("html",))
    assert html is not None
    assert "<script>" not in html.get_content()
    assert "&lt;script&gt;x()&lt;/script&gt;" in html.get_content()


async def test_custom_templates(smtp_server: Server) -> None:
    config = receiver(
        smtp_server.port,
        subject="{{ common_labels.alertname }} on {{ alerts|length }} streams ({{ status }})",
        text="{% for a in firing %}{{ a.labels.stream }}={{ a.annotations.value }}{% endfor %}",
        html="<b>{{ receiver }}</b>",
    )
    await notifier(config).send(notification())
    message = smtp_server.inbox.message()
    assert message["Subject"] == "CheckoutLatencyHigh on 2 streams (firing)"
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None
    assert html is not None
    assert text.get_content().strip() == "checkout=1250"
    assert html.get_content().strip() == "<b>mail</b>"


# --- failures say whether retrying helps ---------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "reason", "retryable"),
    [
        ("550 5.1.1 Mailbox unavailable", "smtp_550", False),
        ("553 5.1.3 Bad address", "smtp_553", False),
        ("451 4.3.0 Try again later", "smtp_451", True),
        ("452 4.2.2 Mailbox full", "smtp_452", True),
    ],
)
async def test_smtp_replies(smtp_server: Server, reply: str, reason: str, retryable: bool) -> None:
    smtp_server.inbox.rcpt_reply = reply
    with pytest.raises(DeliveryError) as failed:
        await notifier(receiver(smtp_server.port)).send(notification())
    assert (failed.value.reason, failed.value.retryable) == (reason, retryable)
    assert smtp_server.inbox.envelopes == []  # all or nothing: no partial delivery


@pytest.mark.parametrize("smtp_server", ["starttls"], indirect=True)
async def test_a_wrong_password_is_not_retried(smtp_server: Server, pki: Pki) -> None:
    config = receiver(
        smtp_server.port,
        tls="starttls",
        ca_file=str(pki.ca),
        auth={"username": "alerts", "password": "wrong"},
    )
    with pytest.raises(DeliveryError) as failed:
        await notifier(config).send(notification())
    assert (failed.value.reason, failed.value.retryable) == ("smtp_535", False)
    assert "wrong" not in str(failed.value)


@pytest.mark.parametrize("smtp_server", ["starttls"], indirect=True)
async def test_an_untrusted_certificate_is_not_retried(smtp_server: Server) -> None:
    config = receiver(smtp_server.port, tls="starttls")  # no ca_file: the system CAs only
    with pytest.raises(DeliveryError) as failed:
        await notifier(config).send(notification())
    assert (failed.value.reason, failed.value.retryable) == ("tls_certificate", False)


async def test_starttls_required_but_not_offered(smtp_server: Server) -> None:
    with pytest.raises(DeliveryError) as failed:
        await notifier(receiver(smtp_server.port, tls="starttls")).send(notification())
    assert (failed.value.reason, failed.value.retryable) == ("smtp_unsupported", False)
    assert smtp_server.inbox.envelopes == []


async def test_a_refused_port_is_retryable() -> None:
    started = time.monotonic()
    with pytest.raises(DeliveryError) as failed:
        await notifier(receiver(free_port())).send(notification())
    assert (failed.value.reason, failed.value.retryable) == ("connection", True)
    assert time.monotonic() - started < 5


async def test_a_template_that_breaks_at_render_time_is_not_retried(smtp_server: Server) -> None:
    config = receiver(smtp_server.port, text="{{ alerts.append(1) }}")  # the sandbox refuses
    with pytest.raises(DeliveryError) as failed:
        await notifier(config).send(notification())
    assert (failed.value.reason, failed.value.retryable) == ("template", False)
    assert smtp_server.inbox.envelopes == []


# --- templates (pure) ---------------------------------------------------------------------------


def test_the_sandbox_hides_python_internals() -> None:
    templates = EmailTemplates(subject="{{ alerts.__class__ }}|{{ receiver }}")
    assert templates.render(notification(), EXTERNAL).subject == "|mail"
    with pytest.raises(SecurityError):
        EmailTemplates(subject="{{ alerts.__class__.__mro__ }}").render(notification(), EXTERNAL)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\r\nBcc: x", "a Bcc: x"),
        ("a\nb\rc\x0bd\x0ce\x1cf\x85g\u2028h\u2029i", "a b c d e f g h i"),
        ("  spaced   out \t", "spaced out"),
        ("x" * 300, "x" * 249 + "…"),
    ],
)
def test_one_line(text: str, expected: str) -> None:
    assert one_line(text) == expected
    assert len(one_line(text).splitlines()) <= 1


def test_resolved_subject() -> None:
    only_resolved = notification()
    only_resolved = Notification(
        only_resolved.receiver,
        only_resolved.group_key,
        only_resolved.group_labels,
        only_resolved.alerts[1:],
        only_resolved.notification_id,
    )
    assert EmailTemplates().render(only_resolved, EXTERNAL).subject == (
        "[RESOLVED] CheckoutLatencyHigh"
    )
