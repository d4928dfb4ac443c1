"""/api/alerts and feedback without a web server: the index, filters, the token on POST,
signed links on GET, what reaches the feedback topic, and applying it in the worker."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from anomalyd.alert import firing, resolved
from anomalyd.clock import ManualClock
from anomalyd.config import parse_config
from anomalyd.decide import Engine
from anomalyd.decide.feedback import FeedbackRecord
from anomalyd.domain import VALUE_FIELD, Alert, Event, FeedbackLabel
from anomalyd.metrics import Metrics
from anomalyd.notify.links import FeedbackLinks
from anomalyd.worker.detection.alert_index import AlertIndex
from anomalyd.worker.detection.feedback_topic import (
    apply_feedback,
    feedback_status,
    publish_precision,
)
from anomalyd.worker.http.alerts import AlertsApi
from anomalyd.worker.http.web import ApiError

URL = "http://anomalyd.test:6066"
T0 = 1_795_341_600.0
TOKEN = "t0ken"
SECRET = b"0123456789abcdef-feedback"


def alert(stream: str = "checkout", alertname: str = "AnomalyDetected", at: float = T0) -> Alert:
    labels = {"alertname": alertname, "stream": stream, "severity": "warning", "detector": "model"}
    return firing(labels, {"summary": f"{stream} is odd"}, at, URL)


class FakeRequest:
    def __init__(self, body: Any = None, token: str | None = TOKEN) -> None:
        self.headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        self._raw = orjson.dumps(body)

    async def read(self) -> bytes:
        return self._raw


class Harness:
    def __init__(self, token: str | None = TOKEN, secret: bytes | None = SECRET) -> None:
        self.index = AlertIndex()
        self.sent: list[FeedbackRecord] = []
        self.clock = ManualClock(T0 + 60)
        self.links = FeedbackLinks(secret, URL, 86400.0) if secret else None
        ids = iter(range(1000))
        self.api = AlertsApi(
            self.index,
            lookup=self.index.get,
            status=lambda stream: {"stream": stream} if stream == "checkout" else None,
            send=self._send,
            token=SecretStr(token) if token else None,
            links=self.links,
            clock=self.clock,
            new_id=lambda: f"id-{next(ids)}",
        )

    async def _send(self, record: FeedbackRecord) -> None:
        self.sent.append(record)

    def link(self, fired: Alert, label: FeedbackLabel) -> dict[str, str]:
        assert self.links is not None
        linked = self.links.annotate(fired, self.clock.now())
        return dict(parse_qsl(urlsplit(linked.annotations[f"feedback_{label.value}"]).query))


def test_the_index_keeps_active_alerts_and_a_bounded_ring() -> None:
    index = AlertIndex(recent=3, ended=1)
    a, b, c, d = alert("a"), alert("b"), alert("c"), alert("d")
    for each in (a, b, resolved(a, T0 + 1), c, resolved(c, T0 + 2), d):
        index.add(each)
    assert [x.labels["stream"] for x in index.active()] == ["d", "b"]
    assert [(x.labels["stream"], x.status.value) for x in index.recent()] == [
        ("d", "firing"),
        ("c", "resolved"),
        ("c", "firing"),
    ]
    assert index.get(b.fingerprint) == b  # firing long ago, still known
    assert index.get(c.fingerprint) == resolved(c, T0 + 2)
    assert index.get(a.fingerprint) is None  # the longest ended is forgotten first
    index.forget({"d"})
    assert [x.labels["stream"] for x in index.active()] == ["b"]
    assert [x.status.value for x in index.history(d.fingerprint)] == ["firing"]


async def test_list_filters_by_stream_status_and_alertname() -> None:
    h = Harness()
    one, two = alert("checkout"), alert("search", alertname="LatencyHigh")
    for each in (one, two, resolved(one, T0 + 5)):
        h.index.add(each)
    everything = await h.api.list({})
    assert [a["labels"]["stream"] for a in everything["active"]] == ["search"]
    assert len(everything["recent"]) == 3
    resolved_only = await h.api.list({"status": "resolved"})
    assert resolved_only["active"] == []
    assert [a["status"] for a in resolved_only["recent"]] == ["resolved"]
    assert (await h.api.list({"stream": "search"}))["recent"] == [two.to_json()]
    assert len((await h.api.list({"alertname": "AnomalyDetected"}))["recent"]) == 2
    with pytest.raises(ApiError) as caught:
        await h.api.list({"status": "pending"})
    assert caught.value.status == 400


async def test_one_alert_with_its_history_and_its_streams_feedback() -> None:
    h = Harness()
    fired = alert()
    h.index.add(fired)
    h.index.add(resolved(fired, T0 + 30))
    body = await h.api.get(fired.fingerprint)
    assert body["alert"]["status"] == "resolved"
    assert [c["status"] for c in body["history"]] == ["resolved", "firing"]
    assert body["feedback"] == {"stream": "checkout"}
    with pytest.raises(ApiError) as caught:
        await h.api.get("0123456789abcdef")
    assert caught.value.status == 404


async def test_posting_a_label_sends_a_record_keyed_to_the_alerts_stream() -> None:
    h = Harness()
    fired = alert()
    h.index.add(fired)
    body = {"label": "false_positive", "comment": "deploy", "by": "ana"}
    answer = await h.api.post_feedback(FakeRequest(body), fired.fingerprint)
    [record] = h.sent
    assert record == FeedbackRecord(
        "id-0",
        fired.fingerprint,
        "checkout",
        "AnomalyDetected",
        "model",
        FeedbackLabel.FALSE_POSITIVE,
        T0 + 60,
        by="ana",
        comment="deploy",
    )
    assert answer == {"status": "accepted", "feedback": record.to_json()}
    await h.api.post_feedback(FakeRequest(body), fired.fingerprint)
    assert [r.id for r in h.sent] == ["id-0", "id-1"]  # every POST is a label of its own


@pytest.mark.parametrize(
    ("token", "configured", "status"),
    [(None, TOKEN, 401), ("wrong", TOKEN, 401), (TOKEN, None, 403)],
)
async def test_posting_needs_the_api_token(
    token: str | None, configured: str | None, status: int
) -> None:
    h = Harness(token=configured)
    fired = alert()
    h.index.add(fired)
    with pytest.raises(ApiError) as caught:
        await h.api.post_feedback(FakeRequest({"label": "true_positive"}, token), fired.fingerprint)
    assert caught.value.status == status
    assert h.sent == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"label": "maybe"},
        {"label": "true_positive", "comment": 5},
        {"label": "true_positive", "by": "x" * 201},
        {"label": "true_positive", "severity": "critical"},
    ],
)
async def test_a_bad_body_is_a_400(body: dict[str, Any]) -> None:
    h = Harness()
    fired = alert()
    h.index.add(fired)
    with pytest.raises(ApiError) as caught:
        await h.api.post_feedback(FakeRequest(body), fired.fingerprint)
    assert caught.value.status == 400


async def test_an_alert_this_worker_does_not_know_needs_its_identity_in_the_body() -> None:
    h = Harness()
    unknown = alert("elsewhere")
    with pytest.raises(ApiError) as caught:
        await h.api.post_feedback(FakeRequest({"label": "true_positive"}), unknown.fingerprint)
    assert caught.value.status == 404
    identity = {"stream": "elsewhere", "alertname": "AnomalyDetected", "detector": "model"}
    body = {"label": "true_positive", **identity}
    await h.api.post_feedback(FakeRequest(body), unknown.fingerprint)
    assert h.sent[0].stream == "elsewhere"
    with pytest.raises(ApiError):
        await h.api.post_feedback(FakeRequest(body), "../../etc/passwd")


async def test_a_signed_link_records_its_label_with_the_links_id() -> None:
    h = Harness()
    fired = alert("search")  # not known to this worker: the link carries what it needs
    query = h.link(fired, FeedbackLabel.TRUE_POSITIVE)
    record = await h.api.click(fired.fingerprint, query)
    assert record.source == "link"
    assert record.stream == "search"
    assert record.label is FeedbackLabel.TRUE_POSITIVE
    await h.api.click(fired.fingerprint, query)
    assert [r.id for r in h.sent] == [record.id, record.id]  # applied once downstream


@pytest.mark.parametrize(
    "tamper",
    [
        lambda q: {**q, "label": "false_positive"},
        lambda q: {**q, "stream": "payments"},
        lambda q: {**q, "exp": str(int(q["exp"]) + 1)},
        lambda q: {**q, "sig": q["sig"][:-1]},
        lambda q: {k: v for k, v in q.items() if k != "sig"},
    ],
)
async def test_a_tampered_link_is_a_403(tamper: Any) -> None:
    h = Harness()
    fired = alert()
    with pytest.raises(ApiError) as caught:
        await h.api.click(fired.fingerprint, tamper(h.link(fired, FeedbackLabel.TRUE_POSITIVE)))
    assert caught.value.status == 403
    assert h.sent == []


async def test_an_expired_link_or_no_secret_is_a_403() -> None:
    h = Harness()
    fired = alert()
    query = h.link(fired, FeedbackLabel.FALSE_POSITIVE)
    h.clock.advance(86400.0)
    with pytest.raises(ApiError, match="expired") as caught:
        await h.api.click(fired.fingerprint, query)
    assert caught.value.status == 403
    with pytest.raises(ApiError, match="not enabled"):
        Harness(secret=None).api.check(fired.fingerprint, query)


# -- applying records in the worker -----------------------------------------------------------

CONFIG = (
    "model: {mode: model, warmup: 10, threshold: 0.5,"
    " feedback: {min_labels: 2, step: 0.1, max_threshold: 0.8}}\n"
)


def engine_with_stream() -> Engine:
    config = parse_config(CONFIG)
    engine = Engine(config.rules, config.model, URL)
    for i in range(20):
        engine.process(Event("checkout", T0 + i, {VALUE_FIELD: 10.0 + i % 3}), T0 + i)
    return engine


def raw(n: int, label: str = "false_positive", stream: str = "checkout") -> bytes:
    record = FeedbackRecord(
        f"id-{n}", "cbd7812c83f6c53e", stream, "AnomalyDetected", "model", FeedbackLabel(label), T0
    )
    return orjson.dumps(record.to_json())


def test_applied_records_move_the_threshold_count_and_log() -> None:
    engine, metrics = engine_with_stream(), Metrics()
    with capture_logs() as logs:
        changed = [apply_feedback(engine, metrics, raw(n)) for n in range(3)]
        duplicate = apply_feedback(engine, metrics, raw(2))
    assert changed == ["checkout"] * 3
    assert duplicate is None
    assert engine.model_threshold("checkout") == pytest.approx(0.7)
    value = metrics.registry.get_sample_value
    assert value("anomalyd_feedback_total", {"detector": "model", "label": "false_positive"}) == 3
    assert value("anomalyd_threshold_adaptations_total", {"direction": "up"}) == 2
    moves = [line for line in logs if line["event"] == "threshold_adapted"]
    assert [(m["old"], m["new"]) for m in moves] == [(0.5, 0.6), (0.6, 0.7)]
    assert moves[-1]["stream"] == "checkout"
    assert moves[-1]["detector"] == "model"
    assert moves[-1]["labels"] == 3
    assert moves[-1]["precision"] == pytest.approx(0.2)
    assert [line["event"] for line in logs].count("feedback_duplicate") == 1
    publish_precision(engine, metrics)
    assert value("anomalyd_feedback_precision", {"detector": "model"}) == pytest.approx(0.2)
    status = feedback_status(engine, "checkout")
    assert status is not None
    assert status["model_threshold"] == pytest.approx(0.7)
    assert status["detectors"]["model"]["false_positives"] == 3


def test_unreadable_records_and_unknown_streams_are_logged_and_skipped() -> None:
    engine, metrics = engine_with_stream(), Metrics()
    with capture_logs() as logs:
        assert apply_feedback(engine, metrics, b"{not json") is None
        assert apply_feedback(engine, metrics, b'{"label": "true_positive"}') is None
        assert apply_feedback(engine, metrics, raw(1, stream="elsewhere")) is None
    assert [line["event"] for line in logs] == [
        "feedback_record_unreadable",
        "feedback_record_unreadable",
        "feedback_stream_unknown",
    ]
    assert (
        metrics.registry.get_sample_value(
            "anomalyd_feedback_total", {"detector": "model", "label": "true_positive"}
        )
        is None
    )
