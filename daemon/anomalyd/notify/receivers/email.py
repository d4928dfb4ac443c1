"""The email receiver: one message per notification over SMTP (aiosmtplib), with a
plain-text and an HTML part rendered from sandboxed templates.

Delivery is all or nothing: every recipient must be accepted before the message is
sent, so a retry never mails twice to the ones that already got it. SMTP says
itself whether trying again can help: 4xx replies are transient, 5xx permanent.
"""

from __future__ import annotations

import re
import ssl
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, parseaddr

import aiosmtplib
import structlog

from anomalyd.clock import Clock
from anomalyd.config import EmailReceiver
from anomalyd.notify.notification import Notification
from anomalyd.notify.receivers.templates import EmailTemplates, RenderedEmail
from anomalyd.notify.retry import DeliveryError

_log = structlog.get_logger(__name__)

_UNSAFE_ID = re.compile(r"[^A-Za-z0-9.\-_]")
#: CRLF line ends, and 7-bit content (quoted-printable or base64 for anything else), so the
#: message needs no 8BITMIME or SMTPUTF8 from the server.
_POLICY = SMTP.clone(cte_type="7bit")


class EmailNotifier:
    def __init__(self, receiver: EmailReceiver, external_url: str, clock: Clock) -> None:
        self.name = receiver.name
        self._receiver = receiver
        self._external_url = external_url
        self._clock = clock
        self._templates = EmailTemplates(receiver.subject, receiver.text, receiver.html)
        self._tls = _tls_context(receiver) if receiver.tls != "none" else None

    async def send(self, notification: Notification) -> None:
        try:
            rendered = self._templates.render(notification, self._external_url)
        except Exception as error:  # a template can raise anything: a config problem
            raise DeliveryError("template", repr(error), retryable=False) from error
        message = build_message(self._receiver, rendered, notification, self._clock.now())
        try:
            await self._transfer(message.as_bytes())
        except (aiosmtplib.SMTPException, OSError) as error:
            raise classify(error) from error
        _log.debug("email_delivered", receiver=self.name, recipients=len(self._receiver.to))

    async def _transfer(self, message: bytes) -> None:
        receiver = self._receiver
        smtp = aiosmtplib.SMTP(
            hostname=receiver.host,
            port=receiver.port,
            use_tls=receiver.tls == "tls",
            start_tls=receiver.tls == "starttls",
            tls_context=self._tls,
            local_hostname=receiver.hello,
            timeout=receiver.timeout,
        )
        async with smtp:
            if receiver.auth is not None:
                await smtp.login(receiver.auth.username, receiver.auth.password.get_secret_value())
            await smtp.mail(_address(receiver.from_))
            for recipient in receiver.to:
                await smtp.rcpt(_address(recipient))
            await smtp.data(message)


def build_message(
    receiver: EmailReceiver, rendered: RenderedEmail, notification: Notification, now: float
) -> EmailMessage:
    """The MIME message: headers only from config and the one-line subject; alert text
    goes in the bodies, never in a header."""
    message = EmailMessage(policy=_POLICY)
    message["Subject"] = rendered.subject
    message["From"] = receiver.from_
    message["To"] = ", ".join(receiver.to)
    message["Date"] = formatdate(now, usegmt=True)
    # Unique per send: mail clients hide a second message with a Message-ID they have seen,
    # and a reminder (repeat) of the same alerts must not vanish. The notification's own id,
    # the same on every retry, goes in its own header for deduplication by tools.
    domain = _address(receiver.from_).rpartition("@")[2]
    message_id = _UNSAFE_ID.sub("_", notification.notification_id)
    message["Message-ID"] = f"<{message_id}.{int(now * 1000)}@{domain}>"
    message["X-Anomalyd-Notification-Id"] = message_id
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


def classify(error: aiosmtplib.SMTPException | OSError) -> DeliveryError:
    """Whether trying again can help: SMTP's 4xx replies, timeouts and lost connections
    yes; 5xx replies, certificate failures and missing server features no."""
    detail = str(error) or type(error).__name__
    if isinstance(error, aiosmtplib.SMTPResponseException):
        retryable = 400 <= error.code < 500
        return DeliveryError(f"smtp_{error.code}", error.message, retryable=retryable)
    if _certificate_failure(error):
        return DeliveryError("tls_certificate", detail, retryable=False)
    if isinstance(error, TimeoutError):
        return DeliveryError("timeout", detail, retryable=True)
    if isinstance(error, OSError):
        return DeliveryError("connection", detail, retryable=True)
    # STARTTLS or AUTH not offered, no usable auth method: the server will not change.
    return DeliveryError("smtp_unsupported", detail, retryable=False)


def _certificate_failure(error: BaseException) -> bool:
    return isinstance(error, ssl.SSLCertVerificationError) or isinstance(
        error.__cause__, ssl.SSLCertVerificationError
    )


def _address(value: str) -> str:
    """The bare address of `Name <a@b>` or `a@b`, for the SMTP envelope."""
    return parseaddr(value)[1]


def _tls_context(receiver: EmailReceiver) -> ssl.SSLContext:
    """Verify the server against the system's CAs, or against `ca_file` when set."""
    return ssl.create_default_context(cafile=receiver.ca_file)
