"""Signed feedback links: made and checked, expiry, tampering (hypothesis), what they add
to an alert (annotations only), and the notifiers that get them."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from anomalyd.alert import fingerprint, firing, resolved
from anomalyd.clock import ManualClock
from anomalyd.config import parse_config
from anomalyd.domain import FeedbackLabel
from anomalyd.notify.links import (
    ANNOTATIONS,
    FeedbackLinks,
    InvalidLink,
    LinkClaim,
    LinkingNotifier,
)
from anomalyd.notify.notification import Notification
from anomalyd.notify.receivers import LogNotifier, WebhookNotifier, build_notifiers
from anomalyd.notify.receivers.templates import EmailTemplates

URL = "http://anomalyd.test:6066"
T0 = 1_795_341_600.0
WEEK = 7 * 86400.0
SECRET = b"0123456789abcdef-feedback"
LABELS = {
    "alertname": "AnomalyDetected",
    "stream": "checkout.latency_ms",
    "severity": "warning",
    "detector": "model",
}
TP, FP = FeedbackLabel.TRUE_POSITIVE, FeedbackLabel.FALSE_POSITIVE


def links(secret: bytes = SECRET) -> FeedbackLinks:
    return FeedbackLinks(secret, URL + "/", WEEK)


def split(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    return parts.path, dict(parse_qsl(parts.query))


def fp_of(path: str) -> str:
    return path.split("/")[3]


def test_an_alert_gets_both_links_in_its_annotations_only() -> None:
    alert = firing(LABELS, {"summary": "x"}, T0, URL)
    linked = links().annotate(alert, now=T0 + 5)
    assert linked.fingerprint == alert.fingerprint == fingerprint(linked.labels)
    assert linked.labels == alert.labels
    assert set(linked.annotations) == {"summary", *ANNOTATIONS.values()}
    for label in FeedbackLabel:
        path, query = split(linked.annotations[f"feedback_{label.value}"])
        assert path == f"/api/alerts/{alert.fingerprint}/feedback"
        assert query["label"] == label.value
        assert query["exp"] == str(int(T0 + WEEK))
        assert (query["stream"], query["alertname"], query["detector"]) == (
            "checkout.latency_ms",
            "AnomalyDetected",
            "model",
        )
        claim = links().verify(alert.fingerprint, query, now=T0 + 10)
        assert claim.label is label
        assert claim.id == f"link:{alert.fingerprint}:{label.value}:{int(T0 + WEEK)}"


def test_the_links_are_the_same_for_firing_resolved_and_every_retry() -> None:
    alert = firing(LABELS, {}, T0, URL)
    first = links().annotate(alert, now=T0)
    later = links().annotate(resolved(alert, T0 + 600), now=T0 + 3600)
    assert {k: first.annotations[k] for k in ANNOTATIONS.values()} == {
        k: later.annotations[k] for k in ANNOTATIONS.values()
    }


def test_an_alert_firing_longer_than_the_ttl_gets_fresh_links() -> None:
    alert = firing(LABELS, {}, T0, URL)
    linked = links().annotate(alert, now=T0 + WEEK + 60)
    _, query = split(linked.annotations["feedback_true_positive"])
    assert query["exp"] == str(int(T0 + 2 * WEEK + 60))


def test_an_alert_without_its_identity_labels_gets_no_links() -> None:
    alert = firing({"alertname": "X", "stream": "s"}, {}, T0, URL)  # no detector
    assert links().annotate(alert, now=T0) is alert


def test_an_expired_link_is_refused() -> None:
    alert = firing(LABELS, {}, T0, URL)
    _, query = split(links().annotate(alert, T0).annotations["feedback_false_positive"])
    links().verify(alert.fingerprint, query, now=T0 + WEEK - 1)
    with pytest.raises(InvalidLink, match="expired"):
        links().verify(alert.fingerprint, query, now=T0 + WEEK)


def test_a_link_signed_with_another_secret_is_refused() -> None:
    alert = firing(LABELS, {}, T0, URL)
    _, query = split(
        links(b"another-secret-of-16+").annotate(alert, T0).annotations["feedback_false_positive"]
    )
    with pytest.raises(InvalidLink, match="signature"):
        links().verify(alert.fingerprint, query, now=T0)


@pytest.mark.parametrize("missing", ["label", "exp", "sig", "stream", "alertname", "detector"])
def test_a_link_missing_a_parameter_is_refused(missing: str) -> None:
    alert = firing(LABELS, {}, T0, URL)
    _, query = split(links().annotate(alert, T0).annotations["feedback_true_positive"])
    del query[missing]
    with pytest.raises(InvalidLink):
        links().verify(alert.fingerprint, query, now=T0)


CLAIM = LinkClaim("cbd7812c83f6c53e", FP, int(T0 + WEEK), "checkout", "AnomalyDetected", "model")


@given(
    key=st.sampled_from(["fingerprint", "label", "exp", "sig", "stream", "alertname", "detector"]),
    value=st.text(max_size=40),
)
@example(key="exp", value=f"0{int(T0 + WEEK)}")  # the same number, written otherwise
@example(key="sig", value="")
def test_any_tampering_is_refused(key: str, value: str) -> None:
    path, query = split(links().url(CLAIM))
    fp = fp_of(path)
    original = fp if key == "fingerprint" else query[key]
    if value == original:
        return  # not a change
    if key == "fingerprint":
        fp = value
    else:
        query[key] = value
    with pytest.raises(InvalidLink):
        links().verify(fp, query, now=T0)


@given(flip=st.integers(0, 42))
def test_flipping_any_character_of_the_signature_is_refused(flip: int) -> None:
    path, query = split(links().url(CLAIM))
    sig = query["sig"]
    replacement = "A" if sig[flip] != "A" else "B"
    query["sig"] = sig[:flip] + replacement + sig[flip + 1 :]
    with pytest.raises(InvalidLink):
        links().verify(fp_of(path), query, now=T0)


def test_the_claim_of_an_untouched_link_is_what_was_signed() -> None:
    path, query = split(links().url(CLAIM))
    assert links().verify(fp_of(path), query, now=T0) == CLAIM


def notification() -> Notification:
    alert = firing(LABELS, {"summary": "checkout is slow"}, T0, URL)
    return Notification("r", "{}:{}", {}, (alert,), "id")


class Recorder:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[Notification] = []

    async def send(self, notification: Notification) -> None:
        self.sent.append(notification)


CONFIG = """
app: {external_url: "http://anomalyd.test:6066"}
http: {feedback_secret: "0123456789abcdef-feedback"}
receivers:
  - {name: hook, type: webhook, url: "http://127.0.0.1:1/hook"}
  - {name: console, type: log}
"""


async def test_receivers_that_reach_people_get_links_the_log_receiver_does_not() -> None:
    async with aiohttp.ClientSession() as session:
        signed = build_notifiers(parse_config(CONFIG), session, ManualClock(T0))
        unsigned = build_notifiers(
            parse_config(CONFIG.replace("http: {feedback_secret", "# ")), session, ManualClock(T0)
        )
    assert [type(n) for n in signed] == [LinkingNotifier, LogNotifier]
    assert [type(n) for n in unsigned] == [WebhookNotifier, LogNotifier]


async def test_the_linking_notifier_hands_on_annotated_alerts() -> None:
    inner = Recorder("hook")
    await LinkingNotifier(inner, links(), ManualClock(T0)).send(notification())
    [sent] = inner.sent
    assert sent.notification_id == "id"
    assert "feedback_false_positive" in sent.alerts[0].annotations


def test_the_default_email_shows_the_links_as_links() -> None:
    linked = links().annotate(notification().alerts[0], T0)
    rendered = EmailTemplates().render(Notification("mail", "{}:{}", {}, (linked,), "id"), URL)
    tp_link = linked.annotations["feedback_true_positive"]
    assert f"Yes: {tp_link}" in rendered.text
    assert "feedback_true_positive =" not in rendered.text  # not listed as an annotation too
    assert f'href="{tp_link.replace("&", "&amp;")}"' in rendered.html
    assert "No, a false positive</a>" in rendered.html
