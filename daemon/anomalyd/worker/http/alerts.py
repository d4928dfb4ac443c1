"""Alerts, and feedback on them, over HTTP:

- `GET /api/alerts`: `{"active": [...], "recent": [...]}`: the alerts firing now on any
  worker (the composition gives a cluster-wide index) and the latest state changes
  (newest first) as this worker emitted them, in Alertmanager's JSON shape; `?stream=`,
  `?status=firing|resolved` and `?alertname=` filter both lists.
- `GET /api/alerts/{fingerprint}`: `{"alert", "history", "feedback"}`: its latest state,
  its remembered changes and, on the worker that owns its stream, the stream's model
  threshold and labels (else `feedback` is null).
- `POST /api/alerts/{fingerprint}/feedback`: `{"label": "true_positive"|"false_positive",
  "comment"?, "by"?}` with the API's bearer token (as for silences): 202. The label goes
  to the feedback topic, keyed by stream, for the stream's owner to apply. An alert this
  worker does not know needs `stream`, `alertname` and `detector` (its labels) too.
- `GET /api/alerts/{fingerprint}/feedback?label=...&sig=...`: a signed one-click link
  from a notification (`notify/links.py`): records the label, once per link, and answers
  a small HTML page; 403 when the link was altered or has expired. `HEAD` only checks it,
  so link checkers that probe with HEAD record nothing.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import structlog
from pydantic import SecretStr

from anomalyd.clock import Clock
from anomalyd.decide.feedback import FeedbackRecord
from anomalyd.domain import Alert, AlertStatus, FeedbackLabel
from anomalyd.notify.links import FeedbackLinks, InvalidLink, LinkClaim
from anomalyd.worker.http.silences import authorize, json_body
from anomalyd.worker.http.web import Answer, ApiError, HttpRequest

_log = structlog.get_logger(__name__)

#: Put a feedback record on the feedback topic.
SendFeedback = Callable[[FeedbackRecord], Awaitable[None]]
#: An alert by fingerprint, from anything this worker knows.
Lookup = Callable[[str], Alert | None]
#: A stream's model threshold and labels, if this worker owns the stream.
Status = Callable[[str], dict[str, Any] | None]

_FINGERPRINT = re.compile(r"[0-9a-f]{16}")
#: The keys a POST may hold, and the longest text each may be.
_BODY = {"label": 32, "comment": 2000, "by": 200, "stream": 200, "alertname": 100, "detector": 50}
_IDENTITY = ("stream", "alertname", "detector")
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


class AlertHistory(Protocol):
    """The alerts this worker emitted (`detection.alert_index.AlertIndex`)."""

    def active(self, wanted: Callable[[Alert], bool]) -> list[Alert]: ...

    def recent(self, wanted: Callable[[Alert], bool]) -> list[Alert]: ...

    def history(self, fingerprint: str) -> list[Alert]: ...


class AlertsApi:
    """The decisions of the API, apart from the web server: each method returns what to
    answer, or raises ApiError with the status."""

    def __init__(
        self,
        index: AlertHistory,
        *,
        lookup: Lookup,
        status: Status,
        send: SendFeedback,
        token: SecretStr | None,
        links: FeedbackLinks | None,
        clock: Clock,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._index = index
        self._lookup = lookup
        self._status = status
        self._send = send
        self._token = token.get_secret_value().encode() if token is not None else None
        self._links = links
        self._clock = clock
        self._new_id = new_id

    async def list(self, query: Mapping[str, str]) -> dict[str, Any]:
        wanted = _filter(query)
        return {
            "active": [alert.to_json() for alert in self._index.active(wanted)],
            "recent": [alert.to_json() for alert in self._index.recent(wanted)],
        }

    async def get(self, fingerprint: str) -> dict[str, Any]:
        alert = self._find(fingerprint)
        if alert is None:
            raise ApiError(404, f"no alert with fingerprint {fingerprint!r} on this worker")
        return {
            "alert": alert.to_json(),
            "history": [change.to_json() for change in self._index.history(fingerprint)],
            "feedback": self._status(alert.labels.get("stream", "")),
        }

    async def post_feedback(self, request: HttpRequest, fingerprint: str) -> dict[str, Any]:
        authorize(request, self._token)
        body = _texts(await json_body(request))
        label = _label(body.get("label"))
        identity = self._identity(fingerprint, body)
        record = FeedbackRecord(
            id=self._new_id(),
            fingerprint=fingerprint,
            **identity,
            label=label,
            at=self._clock.now(),
            by=body.get("by"),
            comment=body.get("comment"),
            source="api",
        )
        await self._sent(record)
        return {"status": "accepted", "feedback": record.to_json()}

    async def click(self, fingerprint: str, query: Mapping[str, str]) -> FeedbackRecord:
        """A signed link was followed: record its label (its id is the link's, so a second
        click is recognised and applied once)."""
        claim = self.check(fingerprint, query)
        record = FeedbackRecord(
            id=claim.id,
            fingerprint=claim.fingerprint,
            stream=claim.stream,
            alertname=claim.alertname,
            detector=claim.detector,
            label=claim.label,
            at=self._clock.now(),
            source="link",
        )
        await self._sent(record)
        return record

    def check(self, fingerprint: str, query: Mapping[str, str]) -> LinkClaim:
        if self._links is None:
            raise ApiError(403, "feedback links are not enabled (http.feedback_secret)")
        try:
            return self._links.verify(fingerprint, query, self._clock.now())
        except InvalidLink as error:
            _log.warning("feedback_link_refused", fingerprint=fingerprint, reason=str(error))
            raise ApiError(403, f"this feedback link is not valid: {error}") from error

    def _find(self, fingerprint: str) -> Alert | None:
        return self._lookup(fingerprint) if _FINGERPRINT.fullmatch(fingerprint) else None

    def _identity(self, fingerprint: str, body: Mapping[str, str]) -> dict[str, str]:
        alert = self._find(fingerprint)
        if alert is not None:
            known = {name: alert.labels.get(name, "") for name in _IDENTITY}
            if all(known.values()):
                return known
        given = {name: body.get(name, "") for name in _IDENTITY}
        if _FINGERPRINT.fullmatch(fingerprint) and all(given.values()):
            return given
        raise ApiError(
            404,
            f"no alert with fingerprint {fingerprint!r} on this worker: "
            "give its stream, alertname and detector labels in the body",
        )

    async def _sent(self, record: FeedbackRecord) -> None:
        await self._send(record)
        _log.info(
            "feedback_received",
            fingerprint=record.fingerprint,
            stream=record.stream,
            detector=record.detector,
            label=record.label.value,
            source=record.source,
        )


def _filter(query: Mapping[str, str]) -> Callable[[Alert], bool]:
    status = query.get("status")
    if status is not None and status not in {s.value for s in AlertStatus}:
        raise ApiError(400, "status: firing or resolved")
    wanted = {key: query[key] for key in ("stream", "alertname") if key in query}

    def matches(alert: Alert) -> bool:
        if status is not None and alert.status.value != status:
            return False
        return all(alert.labels.get(key) == value for key, value in wanted.items())

    return matches


def _texts(body: Mapping[str, Any]) -> dict[str, str]:
    unknown = sorted(set(body) - set(_BODY))
    if unknown:
        raise ApiError(400, f"unknown keys: {', '.join(unknown)} (known: {', '.join(_BODY)})")
    texts = {}
    for key, value in body.items():
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > _BODY[key]:
            raise ApiError(400, f"{key}: a string of at most {_BODY[key]} characters")
        texts[key] = value
    return texts


def _label(value: str | None) -> FeedbackLabel:
    if value not in {label.value for label in FeedbackLabel}:
        raise ApiError(400, "label: true_positive or false_positive")
    return FeedbackLabel(value)


async def click_page(api: AlertsApi, fingerprint: str, query: Mapping[str, str]) -> Answer:
    """A followed feedback link: a small HTML page, never cached."""
    try:
        record = await api.click(fingerprint, query)
    except ApiError as error:
        return Answer(_page(error.message), error.status, kind="html", headers=_NO_STORE)
    return Answer(_page(_thanks(record)), kind="html", headers=_NO_STORE)


def check_link(api: AlertsApi, fingerprint: str, query: Mapping[str, str]) -> Answer:
    """`HEAD` of a feedback link: checks it, records nothing."""
    try:
        api.check(fingerprint, query)
    except ApiError as error:
        return Answer("", error.status, kind="html", headers=_NO_STORE)
    return Answer("", kind="html", headers=_NO_STORE)


def _thanks(record: FeedbackRecord) -> str:
    verdict = "right" if record.label is FeedbackLabel.TRUE_POSITIVE else "a false positive"
    return f"Thank you. {record.alertname} on {record.stream} is recorded as {verdict}."


def _page(message: str) -> str:
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>anomalyd feedback</title>'
        '</head>\n<body style="font-family: sans-serif; margin: 2em;">'
        f"<p>{html.escape(message)}</p></body></html>\n"
    )
