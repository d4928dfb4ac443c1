"""Security, end to end on a real worker: secrets come only from the environment and never
show in logs, /api/status, the other pages, alert payloads or topics; write endpoints need
the API token (compared in constant time); HTTP binds to 127.0.0.1 by default; label
values cannot inject email headers or break templates; webhook signatures verify with the
`standardwebhooks` package."""

from __future__ import annotations

import base64
import hmac
import secrets
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from harness import (
    MailSink,
    Row,
    WebhookSink,
    produce_fast,
    raw_request,
    read_topic,
    scenario_config,
)
from pydantic import SecretStr
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from anomalyd.config import AnomalydConfig
from anomalyd.worker.http import silences as api
from anomalyd.worker.kafka.broker import EmbeddedBroker
from helpers import WorkerProcess, eventually

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

STREAM = "secure.latency_ms"
PROC_NET_TCP = Path("/proc/net/tcp")
LINUX = PROC_NET_TCP.exists()  # where the listeners can be read


@dataclass(frozen=True)
class Secrets:
    api_token: str
    hook_secret: str
    bearer: str
    smtp_password: str
    feedback: str

    @classmethod
    def fresh(cls) -> Secrets:
        return cls(
            api_token="api-" + secrets.token_hex(16),
            hook_secret="whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
            bearer="bearer-" + secrets.token_hex(16),
            smtp_password="smtp-" + secrets.token_hex(16),
            feedback="feedback-" + secrets.token_hex(16),
        )

    def env(self) -> dict[str, str]:
        return {
            "RELIABILITY_API_TOKEN": self.api_token,
            "RELIABILITY_HOOK_SECRET": self.hook_secret,
            "RELIABILITY_BEARER": self.bearer,
            "RELIABILITY_SMTP_PASSWORD": self.smtp_password,
            "RELIABILITY_FEEDBACK_SECRET": self.feedback,
        }

    def needles(self) -> list[bytes]:
        """Every secret, and the signing key inside the webhook secret, as bytes."""
        values = [*self.env().values(), self.hook_secret.removeprefix("whsec_")]
        return [v.encode() for v in values]


def leaks(where: str, data: bytes, found: Secrets) -> list[str]:
    return [f"{where} holds {n[:10].decode()}..." for n in found.needles() if n in data]


# --- a private CA and an SMTP server with STARTTLS and AUTH --------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throwaway CA and a certificate for 127.0.0.1 (openssl CLI)."""
    where = tmp_path_factory.mktemp("pki")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=reliability test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=where)  # fmt: skip
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost",
             cwd=where)  # fmt: skip
    (where / "ext.cnf").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf",
             cwd=where)  # fmt: skip
    return Pki(where / "ca.pem", where / "server.pem", where / "server.key")


def smtp_with_auth(pki: Pki, password: str, logins: list[tuple[str, str]]) -> MailSink:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.cert, pki.key)

    def check(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=(data.login, data.password) == (b"alerts", password.encode()))

    return MailSink(
        tls_context=context, require_starttls=True, authenticator=check, auth_required=True
    ).start()


# --- HTTP ----------------------------------------------------------------------------------------


def listeners(port: int) -> set[str]:
    """The local addresses listening on a TCP port (Linux /proc/net/tcp and tcp6), as hex:
    0100007F is 127.0.0.1."""
    found = set()
    for table in (PROC_NET_TCP, PROC_NET_TCP.with_name("tcp6")):
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            address, state = fields[1], fields[3]
            host, _, hex_port = address.rpartition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(host)
    return found


# --- the tests -----------------------------------------------------------------------------------


async def test_secrets_stay_secret_writes_need_the_token_http_binds_to_loopback(
    broker: EmbeddedBroker,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
    pki: Pki,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found = Secrets.fresh()
    for name, value in found.env().items():  # the worker inherits the environment
        monkeypatch.setenv(name, value)
    sink = await WebhookSink(secret=found.hook_secret).start()
    logins: list[tuple[str, str]] = []
    mail = smtp_with_auth(pki, found.smtp_password, logins)
    try:
        hook = {
            "type": "webhook",
            "name": "hook",
            "url": sink.url,
            "secret": "${RELIABILITY_HOOK_SECRET}",
            "bearer_token": "${RELIABILITY_BEARER}",
        }
        email = mail.receiver(
            tls="starttls",
            ca_file=str(pki.ca),
            auth={"username": "alerts", "password": "${RELIABILITY_SMTP_PASSWORD}"},
        )
        path, config = scenario_config(
            tmp_path,
            broker.bootstrap,
            [hook, email],
            app={"log_level": "debug"},  # even the debug log holds no secret
            http={
                "api_token": "${RELIABILITY_API_TOKEN}",
                "feedback_secret": "${RELIABILITY_FEEDBACK_SECRET}",
            },
        )
        assert "bind" not in config["http"]
        assert all(n.decode() not in path.read_text() for n in found.needles()), "not in the file"
        worker = start_worker(path, config)
        await worker.wait_ready()
        assert AnomalydConfig().http.bind == "127.0.0.1"
        if LINUX:
            bound = listeners(config["http"]["port"])
            assert bound == {"0100007F"}, f"HTTP listens on loopback only by default: {bound}"
        now = time.time()
        events = [
            {"stream": STREAM, "ts": now + i, "value": v} for i, v in enumerate([90, 900, 90])
        ]
        topics = config["topics"]
        await produce_fast(broker.bootstrap, topics["events"], events)
        for tally in (lambda: sink.tally, lambda: mail.tally):
            await eventually(lambda t=tally: t().complete([STREAM]), what="firing and resolved")

        # Signatures verify with the standardwebhooks package; a changed body does not.
        assert sink.bad_signatures == []
        headers, body = sink.requests[0]
        Webhook(found.hook_secret).verify(body, headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(found.hook_secret).verify(body.replace(b"900", b"901"), headers)
        # The bearer token and the SMTP password reach only where they are meant to.
        assert {h["authorization"] for h, _ in sink.requests} == {f"Bearer {found.bearer}"}
        assert set(logins) == {("alerts", found.smtp_password)}

        fingerprint = sink.payloads[0]["alerts"][0]["fingerprint"]
        await check_write_endpoints(worker, found.api_token, fingerprint)

        # Nothing else holds a secret: pages, log, payloads, mail, topics.
        shown = [
            (page, worker.get(page)[1])
            for page in (
                "/api/status",
                "/metrics",
                "/api/alerts",
                "/api/silences",
                f"/api/alerts/{fingerprint}",
                "/api/drift",
            )
        ]
        shown += [("webhook body", b) for _, b in sink.requests]
        shown += [("mail", m.as_bytes()) for m in mail.messages]
        for name in ("alerts", "alerts_dlq", "notify_log", "alert_state", "silences", "feedback"):
            records = await read_topic(broker.bootstrap, topics[name])
            shown.append(
                (
                    f"topic {name}",
                    b"".join((r.value or b"") + repr(r.headers).encode() for r in records),
                )
            )
        worker.stop()
        shown.append(("the log", worker.log_path.read_bytes()))
        problems = [leak for where, data in shown for leak in leaks(where, data, found)]
        assert problems == []
    finally:
        await sink.stop()
        mail.stop()


async def check_write_endpoints(worker: WorkerProcess, token: str, fingerprint: str) -> None:
    """Every write endpoint: 401 without the token or with another, accepted with it."""
    silence = {"matchers": ['stream="nothing"'], "endsAt": "2099-01-01T00:00:00Z"}
    feedback = {"label": "true_positive"}
    writes = [
        ("POST", "/api/silences", silence, 200),
        ("POST", "/api/v2/silences", silence, 200),
        ("POST", f"/api/alerts/{fingerprint}/feedback", feedback, 202),
        ("POST", "/-/reload", None, 200),
    ]
    silence_ids = {}
    for method, page, body, accepted in writes:
        assert worker.call(method, page, body)[0] == 401, page
        assert worker.call(method, page, body, token=token + "x")[0] == 401, page
        assert worker.call(method, page, body, token=token[:-1])[0] == 401, page
        status, answer = worker.call(method, page, body, token=token)
        assert status == accepted, answer
        if page.endswith("/silences"):
            silence_ids[page] = orjson.loads(answer)["silenceID"]
    for page in (
        f"/api/silences/{silence_ids['/api/silences']}",
        f"/api/v2/silence/{silence_ids['/api/v2/silences']}",
    ):
        assert worker.call("DELETE", page)[0] == 401
        assert worker.call("DELETE", page, token="nope")[0] == 401
        assert worker.call("DELETE", page, token=token)[0] == 200


async def test_an_undecodable_bearer_token_is_refused_and_the_token_never_logged(
    broker: EmbeddedBroker,
    webhook_sink: WebhookSink,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    record: Callable[[Row], None],
) -> None:
    """`Authorization: Bearer \\xff` was a 500 whose logged traceback listed the frames'
    locals, the configured API token among them: from a request that needs no token."""
    token = "api-" + secrets.token_hex(16)
    monkeypatch.setenv("RELIABILITY_API_TOKEN", token)
    path, config = scenario_config(
        tmp_path,
        broker.bootstrap,
        [webhook_sink.receiver()],
        app={"log_level": "debug"},
        http={"api_token": "${RELIABILITY_API_TOKEN}"},
    )
    worker = start_worker(path, config)
    await worker.wait_ready()
    port = config["http"]["port"]
    body = orjson.dumps({"matchers": ['stream="x"'], "endsAt": "2099-01-01T00:00:00Z"})
    writes = [
        ("POST", "/api/silences", body),
        ("DELETE", "/api/silences/x", b""),
        ("POST", "/api/alerts/0123456789abcdef/feedback", b'{"label": "true_positive"}'),
    ]
    odd = [
        b"Bearer \xff",
        b"Bearer " + token.encode() + b"\xff",
        b"\xff\xfe",
        b"Bearer \xed\xa0\x80",
    ]
    answers = {
        (method, page, header): (
            await raw_request(port, method, page, b"Authorization: " + header + b"\r\n", sent)
        )[0]
        for method, page, sent in writes
        for header in odd
    }
    assert set(answers.values()) == {401}, answers
    granted = b"Authorization: Bearer " + token.encode() + b"\r\n"
    assert (await raw_request(port, "POST", "/api/silences", granted, body))[0] == 200
    worker.stop()

    log = worker.log_path.read_bytes()
    errors = [line for line in worker.log_lines() if line.get("level") in ("error", "critical")]
    record(
        Row(
            "hostile HTTP: undecodable bearer",
            0,
            0,
            0,
            0,
            0,
            None,
            f"{len(answers)} requests, answers {sorted(set(answers.values()))}; "
            f"token in log: {token.encode() in log}",
        )
    )
    assert token.encode() not in log, "the API token is in the worker's log"
    assert errors == [], errors[:2]


def test_the_api_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(api.hmac, "compare_digest", spy)

    class Request:
        headers = {"Authorization": "Bearer guess"}

        async def read(self) -> bytes:
            return b""

    with pytest.raises(api.ApiError) as refused:
        api.authorize(Request(), SecretStr("the-token").get_secret_value().encode())
    assert refused.value.status == 401
    assert compared == [(b"guess", b"the-token")]


async def test_label_values_cannot_inject_mail_headers_or_template_code(
    broker: EmbeddedBroker,
    mail_sink: MailSink,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> None:
    # Line breaks never get that far: CRLF, U+2028 and U+0085 are refused at ingest. Header
    # text and template syntax on one line pass, and must stay text.
    hostile = {
        "team": "core Bcc: evil@example.com",
        "owner": "x To: evil@example.com",
        "note": "{{ 7 * 7 }}{% if true %}boom{% endif %}<script>alert(1)</script>",
    }
    receiver = mail_sink.receiver(
        subject="[{{ status }}] {{ common_labels.team }} {{ common_labels.owner }}",
        text="{% for a in alerts %}{{ a.status }} {{ a.labels.stream }} "
        "{{ a.labels.note }}\n{% endfor %}",
        html="<p>{{ common_labels.note }}</p>",
    )
    path, config = scenario_config(tmp_path, broker.bootstrap, [receiver])
    worker = start_worker(path, config)
    await worker.wait_ready()
    now = time.time()
    breaks = ["a\r\nBcc: evil@x", "core\u2028Bcc: evil@example.com", "x\u0085To: evil@example.com"]
    events = [
        *({"stream": STREAM, "ts": now, "value": 900, "labels": {"team": b}} for b in breaks),
        *(
            {"stream": STREAM, "ts": now + i, "value": v, "labels": hostile}
            for i, v in enumerate([90, 900])
        ),
    ]
    await produce_fast(broker.bootstrap, config["topics"]["events"], events)
    await eventually(lambda: mail_sink.messages, what="the mail")
    dead = await read_topic(broker.bootstrap, config["topics"]["events_dlq"])
    assert len(dead) == len(breaks)
    assert all(dict(d.headers)["reason"].startswith(b"bad_labels") for d in dead)

    message = mail_sink.messages[0]
    assert message["Bcc"] is None
    assert message.get_all("To") == ["oncall@example.com"]
    assert "\n" not in message["Subject"]
    assert "evil@example.com" in message["Subject"], "the text stays, as text, on one line"
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None
    assert html is not None
    assert "{{ 7 * 7 }}{% if true %}boom{% endif %}" in text.get_content(), "not evaluated"
    assert "&lt;script&gt;" in html.get_content()
    assert "<script>" not in html.get_content()
