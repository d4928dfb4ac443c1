"""Signed one-click feedback links, added to each alert's annotations right before a
receiver delivers it:

    feedback_true_positive:  {external_url}/api/alerts/{fp}/feedback?label=true_positive&...
    feedback_false_positive: {external_url}/api/alerts/{fp}/feedback?label=false_positive&...

The query is `label`, `stream`, `alertname`, `detector`, `exp` (epoch seconds) and `sig`:
the unpadded base64url HMAC-SHA256, under `http.feedback_secret`, of
`fingerprint|label|exp|stream|alertname|detector`. The link names the alert's stream,
alertname and detector (signed like the rest) so that whichever worker the click reaches
can route the label to the stream's owner without having seen the alert.

`exp` is the alert's start plus `http.feedback_link_ttl`, so the firing and resolved
notifications, reminders and retries all carry the same links, and a second click is
recognisably the same (one label per alert, link and label); an alert that has fired
longer than that gets links valid for another `feedback_link_ttl` from the notification.

Why here and not where alerts are built: annotations only, so fingerprints and
notification ids do not change; a link is a capability derived from a secret, so it
stays out of the alerts topic, its dead letters and the log receiver (only receivers
that reach people get links); detection stays free of secrets and HTTP, and `backtest`
output is unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import quote, urlencode

from anomalyd.clock import Clock
from anomalyd.config import AnomalydConfig
from anomalyd.domain import Alert
from anomalyd.domain import FeedbackLabel as Label
from anomalyd.notify.notification import Notification, Notifier

#: The annotation holding each label's link.
ANNOTATIONS = {label: f"feedback_{label.value}" for label in Label}

_SEPARATOR = "|"


class InvalidLink(Exception):
    """The link was not made by us, was altered, or has expired."""


@dataclass(frozen=True, slots=True)
class LinkClaim:
    """What a valid link asserts: a label on this alert, until `exp`."""

    fingerprint: str
    label: Label
    exp: int
    stream: str
    alertname: str
    detector: str

    @property
    def id(self) -> str:
        """The same for every click on this link: applying it is idempotent."""
        return f"link:{self.fingerprint}:{self.label.value}:{self.exp}"


class FeedbackLinks:
    def __init__(self, secret: bytes, external_url: str, ttl: float) -> None:
        self._secret = secret
        self._base = external_url.rstrip("/")
        self._ttl = ttl

    @classmethod
    def from_config(cls, config: AnomalydConfig) -> FeedbackLinks | None:
        """None when `http.feedback_secret` is unset: notifications then carry no links."""
        secret = config.http.feedback_secret
        if secret is None:
            return None
        key = secret.get_secret_value().encode()
        return cls(key, config.app.external_url, config.http.feedback_link_ttl)

    def annotate(self, alert: Alert, now: float) -> Alert:
        """The alert with both links among its annotations (unchanged if it lacks the
        labels a link names)."""
        identity = [alert.labels.get(name, "") for name in ("stream", "alertname", "detector")]
        if not all(identity) or any(_SEPARATOR in part for part in identity):
            return alert
        stream, alertname, detector = identity
        exp = int(alert.starts_at + self._ttl)
        if exp <= now:
            exp = int(now + self._ttl)
        links = {
            ANNOTATIONS[label]: self.url(
                LinkClaim(alert.fingerprint, label, exp, stream, alertname, detector)
            )
            for label in Label
        }
        return replace(alert, annotations={**alert.annotations, **links})

    def url(self, claim: LinkClaim) -> str:
        query = {
            "label": claim.label.value,
            "stream": claim.stream,
            "alertname": claim.alertname,
            "detector": claim.detector,
            "exp": str(claim.exp),
            "sig": self._sign(claim),
        }
        path = f"/api/alerts/{quote(claim.fingerprint, safe='')}/feedback"
        return f"{self._base}{path}?{urlencode(query)}"

    def verify(self, fingerprint: str, query: Mapping[str, str], now: float) -> LinkClaim:
        """The claim of a link's path and query; raises InvalidLink unless the signature is
        ours over exactly these values and `exp` has not passed."""
        try:
            claim = LinkClaim(
                fingerprint,
                Label(query["label"]),
                _epoch(query["exp"]),
                query["stream"],
                query["alertname"],
                query["detector"],
            )
            given = query["sig"]
        except (KeyError, ValueError):
            raise InvalidLink("a parameter is missing or malformed") from None
        if not hmac.compare_digest(given.encode(), self._sign(claim).encode()):
            raise InvalidLink("the signature does not match")
        if claim.exp <= now:
            raise InvalidLink("the link has expired")
        return claim

    def _sign(self, claim: LinkClaim) -> str:
        parts = [
            claim.fingerprint,
            claim.label.value,
            str(claim.exp),
            claim.stream,
            claim.alertname,
            claim.detector,
        ]
        if any(_SEPARATOR in part for part in parts):  # nothing we sign can hold one
            raise InvalidLink(f"{_SEPARATOR!r} in a signed value")
        message = _SEPARATOR.join(parts).encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _epoch(text: str) -> int:
    """Epoch seconds written as we write them (so no two texts verify as one link)."""
    if not text.isascii() or not text.isdigit() or len(text) > 12 or str(int(text)) != text:
        raise ValueError("exp: epoch seconds")
    return int(text)


class LinkingNotifier:
    """A receiver's notifier, handed each alert with its feedback links."""

    def __init__(self, inner: Notifier, links: FeedbackLinks, clock: Clock) -> None:
        self.name = inner.name
        self._inner = inner
        self._links = links
        self._clock = clock

    async def send(self, notification: Notification) -> None:
        now = self._clock.now()
        alerts = tuple(self._links.annotate(alert, now) for alert in notification.alerts)
        await self._inner.send(replace(notification, alerts=alerts))
