"""Receivers: where notifications go. One model per `type` (webhook, email,
alertmanager, log), told apart by `type`.

Secrets (tokens, passwords, webhook signing secrets) are `SecretStr`: they print as
`**********` in reprs, logs and error messages; read them with `.get_secret_value()`
at the point of use only.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from anomalyd.config.durations import Duration
from anomalyd.config.strict import Strict

_NAME = r"^[A-Za-z_][A-Za-z0-9_.\-]{0,99}$"
#: RFC 9110 token: what a header name may be.
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
#: Headers the webhook receiver sets itself; a custom header must not override them.
_RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "host",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)
_SECRET_PREFIX = "whsec_"
#: The Standard Webhooks spec asks for signing keys of 24 to 64 bytes.
_SECRET_BYTES = (24, 64)
_ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?$")


# --- value checks -------------------------------------------------------------------------------


def _http_url(url: str) -> str:
    """An http(s) URL with a host. Messages do not repeat it: it may carry a token."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"must be an http:// or https:// URL, not {parts.scheme or 'none'}")
    if not parts.hostname:
        raise ValueError("the URL has no host")
    if any(ch.isspace() for ch in url):
        raise ValueError("the URL contains whitespace")
    return url


def signing_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret; ValueError if it is not one."""
    if not secret.startswith(_SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {_SECRET_PREFIX!r} (then base64)")
    try:
        key = base64.b64decode(secret.removeprefix(_SECRET_PREFIX), validate=True)
    except binascii.Error as error:
        raise ValueError("a webhook secret is 'whsec_' then base64: it is not base64") from error
    low, high = _SECRET_BYTES
    if not low <= len(key) <= high:
        raise ValueError(
            f"a webhook secret must decode to {low}..{high} bytes, not {len(key)}"
            " (make one: see README, Receivers)"
        )
    return key


def _webhook_secret(secret: SecretStr) -> SecretStr:
    signing_key(secret.get_secret_value())
    return secret


def _email_address(value: str) -> str:
    """`alerts@example.com` or `Alerts <alerts@example.com>`, on one line."""
    if "\r" in value or "\n" in value:
        raise ValueError("an email address must be on one line")
    _, address = parseaddr(value)
    if not (address.isascii() and _ADDRESS.match(address)):
        raise ValueError("not an email address (e.g. alerts@example.com)")
    return value


def _host_port(value: str) -> str:
    """host:port. Messages do not repeat the value: a misplaced `user:password@host`
    is a common mistake, and problems end up in logs and on /api/status."""
    host, sep, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("not host:port (e.g. smtp.example.com:587)")
    if not re.fullmatch(r"[A-Za-z0-9.\-]+", host):
        try:
            ipaddress.ip_address(host)  # an IPv6 literal such as [::1]:25
        except ValueError as error:
            raise ValueError(
                "the host is not a host name or an IP address (credentials go in auth)"
            ) from error
    return value


def _template(source: str) -> str:
    try:
        ImmutableSandboxedEnvironment().parse(source)
    except TemplateSyntaxError as error:
        raise ValueError(f"not a valid template: {error.message} (line {error.lineno})") from error
    return source


def _headers(headers: dict[str, str]) -> dict[str, str]:
    for name, value in headers.items():
        if not _HEADER_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid header name")
        if name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"header {name!r} is set by anomalyd itself")
        if "\r" in value or "\n" in value or "\0" in value:
            raise ValueError(f"the value of header {name!r} must be on one line")
    return headers


_Url = Annotated[str, AfterValidator(_http_url)]
WebhookSecret = Annotated[SecretStr, AfterValidator(_webhook_secret)]
EmailAddress = Annotated[str, AfterValidator(_email_address)]
Template = Annotated[str, AfterValidator(_template)]


# --- shared parts -------------------------------------------------------------------------------


class BasicAuth(Strict):
    username: str = Field(min_length=1)
    password: SecretStr


class _Receiver(Strict):
    name: str = Field(pattern=_NAME)


class _HttpReceiver(_Receiver):
    """What every HTTP receiver has: a URL, a timeout, extra headers and optional auth."""

    # Webhook URLs often carry a token (Slack-style): kept out of reprs, as in Alertmanager.
    url: _Url = Field(repr=False)
    timeout: Duration = Field(10.0, gt=0)
    # Often carry credentials (Authorization: ...): kept out of reprs and logs.
    headers: Annotated[dict[str, str], AfterValidator(_headers)] = Field({}, repr=False)
    bearer_token: SecretStr | None = None
    basic_auth: BasicAuth | None = None

    @model_validator(mode="after")
    def _one_authorization(self) -> _HttpReceiver:
        sources = [self.bearer_token is not None, self.basic_auth is not None]
        sources.append(any(name.lower() == "authorization" for name in self.headers))
        if sum(sources) > 1:
            raise ValueError(
                "set at most one of bearer_token, basic_auth and an Authorization header"
            )
        return self


# --- the receivers ------------------------------------------------------------------------------


class WebhookReceiver(_HttpReceiver):
    """POSTs Alertmanager's webhook payload (v4); signs it when it has a secret."""

    type: Literal["webhook"]
    secret: WebhookSecret | None = None
    secrets: list[WebhookSecret] = Field(
        [], max_length=8, description="Rotation: the new secret first, then the old ones."
    )
    max_alerts: int = Field(0, ge=0, description="Send at most this many alerts; 0: all.")

    @model_validator(mode="after")
    def _secret_or_secrets(self) -> WebhookReceiver:
        if self.secret is not None and self.secrets:
            raise ValueError("set secret or secrets (for rotation), not both")
        return self

    @property
    def signing_secrets(self) -> tuple[SecretStr, ...]:
        """The secrets to sign with, in order; empty: send unsigned."""
        return (self.secret,) if self.secret is not None else tuple(self.secrets)


class AlertmanagerReceiver(_HttpReceiver):
    """Pushes alerts to a real Alertmanager: `POST {url}/api/v2/alerts`.

    A firing alert is sent with `endsAt = now + firing_ttl`; Alertmanager resolves
    it by itself once that passes unless it is sent again, so the route to this
    receiver must repeat (repeat_interval, plus group_interval) well within
    `firing_ttl`. A resolved alert carries its real `endsAt`.
    """

    type: Literal["alertmanager"]
    firing_ttl: Duration = Field(
        300.0, gt=0, description="endsAt of a firing alert: now + this; resend before it."
    )


class SmtpAuth(Strict):
    username: str = Field(min_length=1)
    password: SecretStr


class EmailReceiver(_Receiver):
    """Sends one email per notification over SMTP, with a text and an HTML part."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["email"]
    smarthost: Annotated[str, AfterValidator(_host_port)]
    from_: EmailAddress = Field(alias="from")
    to: list[EmailAddress] = Field(min_length=1, max_length=100)
    tls: Literal["starttls", "tls", "none"] = "starttls"
    auth: SmtpAuth | None = None
    ca_file: str | None = Field(None, description="PEM file of a private CA to trust.")
    hello: str = Field(
        "localhost", pattern=r"^[A-Za-z0-9.\-]{1,253}$", description="The name we give in EHLO."
    )
    timeout: Duration = Field(30.0, gt=0, description="For each step of the SMTP dialogue.")
    subject: Template | None = Field(None, max_length=2000)
    text: Template | None = Field(None, max_length=100_000)
    html: Template | None = Field(None, max_length=100_000)

    @field_validator("ca_file")
    @classmethod
    def _readable(cls, path: str | None) -> str | None:
        if path is not None and not Path(path).is_file():
            raise ValueError(f"{path!r} is not a file")
        return path

    @model_validator(mode="after")
    def _no_clear_text_secrets(self) -> EmailReceiver:
        if self.tls == "none" and self.auth is not None:
            raise ValueError("auth needs tls: starttls or tls (the password would go in clear)")
        if self.tls == "none" and self.ca_file is not None:
            raise ValueError("ca_file needs tls: starttls or tls")
        return self

    @property
    def host(self) -> str:
        return self.smarthost.rpartition(":")[0].removeprefix("[").removesuffix("]")

    @property
    def port(self) -> int:
        return int(self.smarthost.rpartition(":")[2])


class LogReceiver(_Receiver):
    """Prints each alert as one JSON log line."""

    type: Literal["log"]


Receiver = Annotated[
    WebhookReceiver | EmailReceiver | AlertmanagerReceiver | LogReceiver,
    Field(discriminator="type"),
]
