"""The webhook receiver against a real HTTP server on 127.0.0.1: the payload and headers a
receiver gets, Standard Webhooks signatures checked with the `standardwebhooks` package,
auth, and how each kind of failure is classified."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio
from pytest_httpserver import HTTPServer
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from werkzeug import Request, Response

from anomalyd.alert import firing, resolved
from anomalyd.clock import ManualClock
from anomalyd.config import WebhookReceiver
from anomalyd.notify import DeliveryError, WebhookNotifier
from anomalyd.notify.notification import Notification
from anomalyd.notify.payload import notification_payload
from anomalyd.notify.receivers._http import redact_url
from anomalyd.worker.kafka.admin import free_port

EXTERNAL = "http://anomalyd.test:6066"
NEW_SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
OLD_SECRET = "whsec_" + base64.b64encode(bytes(range(100, 132))).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"x" * 32).decode()


def notification(notification_id: str = "n-3f2a9c") -> Notification:
    t0 = time.time() - 60
    cpu = firing(
        {"alertname": "High", "stream": "cpu", "host": "a"}, {"summary": "hi"}, t0, EXTERNAL
    )
    mem = firing(
        {"alertname": "High", "stream": "cpu", "host": "b"}, {"summary": "hi"}, t0, EXTERNAL
    )
    return Notification(
        receiver="oncall",
        group_key='{}/{}:{alertname="High"}',
        group_labels={"alertname": "High"},
        alerts=(cpu, resolved(mem, t0 + 30)),
        notification_id=notification_id,
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(float(int(time.time())))


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def receiver(url: str, **extra: Any) -> WebhookReceiver:
    return WebhookReceiver.model_validate(
        {"type": "webhook", "name": "oncall", "url": url, **extra}
    )


def requests(server: HTTPServer) -> list[Request]:
    return [request for request, _ in server.log]


# --- what a receiver gets -----------------------------------------------------------------------


async def test_payload_and_signed_headers(
    httpserver: HTTPServer, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    config = receiver(httpserver.url_for("/hook"), secret=NEW_SECRET, headers={"X-Team": "core"})
    sent = notification()

    await WebhookNotifier(config, EXTERNAL, session, clock).send(sent)

    [request] = requests(httpserver)
    body = request.get_data()
    assert orjson.loads(body) == notification_payload(sent, EXTERNAL)
    headers = request.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Team"] == "core"
    assert headers["User-Agent"].startswith("anomalyd/")
    assert headers["webhook-id"] == "n-3f2a9c"
    assert headers["webhook-timestamp"] == str(int(clock.now()))
    assert headers["webhook-signature"].startswith("v1,")
    # An independent implementation of the spec accepts it, on the exact bytes received.
    assert Webhook(NEW_SECRET).verify(body, dict(headers)) == orjson.loads(body)
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER_SECRET).verify(body, dict(headers))


async def test_the_payload_is_alertmanagers_v4(
    httpserver: HTTPServer, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    await WebhookNotifier(receiver(httpserver.url_for("/hook")), EXTERNAL, session, clock).send(
        notification()
    )
    body = orjson.loads(requests(httpserver)[0].get_data())
    assert body["version"] == "4"
    assert body["groupKey"] == '{}/{}:{alertname="High"}'
    assert body["receiver"] == "oncall"
    assert body["status"] == "firing"  # one of the two still fires
    assert body["groupLabels"] == {"alertname": "High"}
    assert body["commonLabels"] == {"alertname": "High", "stream": "cpu"}
    assert body["commonAnnotations"] == {"summary": "hi"}
    assert body["externalURL"] == EXTERNAL
    assert body["truncatedAlerts"] == 0
    assert [alert["status"] for alert in body["alerts"]] == ["firing", "resolved"]
    assert body["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"


async def test_max_alerts_truncates_and_counts(
    httpserver: HTTPServer, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    config = receiver(httpserver.url_for("/hook"), max_alerts=1)
    await WebhookNotifier(config, EXTERNAL, session, clock).send(notification())
    body = orjson.loads(requests(httpserver)[0].get_data())
    assert (len(body["alerts"]), body["truncatedAlerts"]) == (1, 1)
    assert body["commonLabels"] == {"alertname": "High", "stream": "cpu"}  # over all alerts


async def test_rotation_signs_with_every_secret(
    httpserver: HTTPServer, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    config = receiver(httpserver.url_for("/hook"), secrets=[NEW_SECRET, OLD_SECRET])

    await WebhookNotifier(config, EXTERNAL, session, clock).send(notification())

    [request] = requests(httpserver)
    body, headers = request.get_data(), dict(request.headers)
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert all(signature.startswith("v1,") for signature in signatures)
    Webhook(NEW_SECRET).verify(body, headers)  # receivers already on the new secret
    Webhook(OLD_SECRET).verify(body, headers)  # and those still on the old one
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER_SECRET).verify(body, headers)


async def test_unsigned_requests_still_carry_the_idempotency_key(
    httpserver: HTTPServer, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    await WebhookNotifier(receiver(httpserver.url_for("/hook")), EXTERNAL, session, clock).send(
        notification()
    )
    headers = requests(httpserver)[0].headers
    assert headers["webhook-id"] == "n-3f2a9c"
    assert "webhook-signature" not in headers


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        ({"bearer_token": "s3cr3t"}, "Bearer s3cr3t"),
        (
            {"basic_auth": {"username": "anomalyd", "password": "pässword"}},
            "Basic " + base64.b64encode("anomalyd:pässword".encode()).decode(),
        ),
        ({"headers": {"Authorization": "Token abc"}}, "Token abc"),
    ],
)
async def test_authorization(
    httpserver: HTTPServer,
    session: aiohttp.ClientSession,
    clock: ManualClock,
    auth: dict[str, Any],
    expected: str,
) -> None:
    httpserver.expect_request("/hook").respond_with_data("ok")
    config = receiver(httpserver.url_for("/hook"), **auth)
    await WebhookNotifier(config, EXTERNAL, session, clock).send(notification())
    assert requests(httpserver)[0].headers["Authorization"] == expected


# --- retries keep the id; failures say whether retrying helps ------------------------------------


async def test_503_then_200_keeps_the_webhook_id(
    httpserver: HTTPServer, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    httpserver.expect_ordered_request("/hook").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request("/hook").respond_with_data("ok")
    notifier = WebhookNotifier(
        receiver(httpserver.url_for("/hook"), secret=NEW_SECRET), EXTERNAL, session, clock
    )
    sent = notification()

    with pytest.raises(DeliveryError) as failed:
        await notifier.send(sent)
    assert (failed.value.reason, failed.value.retryable) == ("http_503", True)
    assert "busy" in failed.value.detail
    clock.advance(7)
    await notifier.send(sent)  # the retry: the same notification

    first, second = requests(httpserver)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "n-3f2a9c"
    assert int(second.headers["webhook-timestamp"]) == int(first.headers["webhook-timestamp"]) + 7
    assert first.get_data() == second.get_data()
    for request in (first, second):
        Webhook(NEW_SECRET).verify(request.get_data(), dict(request.headers))


async def test_a_restarted_notifier_sends_the_same_id(
    httpserver: HTTPServer, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """The id comes from the notification, not from the process: a crash and a re-delivery
    of the same notification by a new worker carry the same idempotency key."""
    httpserver.expect_request("/hook").respond_with_data("ok")
    config = receiver(httpserver.url_for("/hook"), secret=NEW_SECRET)
    for _ in range(2):
        await WebhookNotifier(config, EXTERNAL, session, clock).send(notification())
    ids = {request.headers["webhook-id"] for request in requests(httpserver)}
    assert ids == {"n-3f2a9c"}


@pytest.mark.parametrize(
    ("status", "header", "retry_after"),
    [
        (429, "7", 7.0),
        (503, "120", 120.0),
        (429, format_datetime(datetime.fromtimestamp(2_000_000_030, tz=UTC), usegmt=True), 30.0),
        (429, None, None),
        (408, None, None),
        (425, None, None),
    ],
)
async def test_retryable_answers_carry_retry_after(
    httpserver: HTTPServer,
    session: aiohttp.ClientSession,
    status: int,
    header: str | None,
    retry_after: float | None,
) -> None:
    headers = {"Retry-After": header} if header else {}
    httpserver.expect_request("/hook").respond_with_data("slow down", status, headers)
    clock = ManualClock(2_000_000_000.0)
    notifier = WebhookNotifier(receiver(httpserver.url_for("/hook")), EXTERNAL, session, clock)
    with pytest.raises(DeliveryError) as failed:
        await notifier.send(notification())
    assert failed.value.reason == f"http_{status}"
    assert failed.value.retryable
    assert failed.value.retry_after == retry_after


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 413, 422])
async def test_other_4xx_are_not_retried(
    httpserver: HTTPServer, session: aiohttp.ClientSession, clock: ManualClock, status: int
) -> None:
    httpserver.expect_request("/hook").respond_with_data("gone", status, {"Retry-After": "5"})
    notifier = WebhookNotifier(receiver(httpserver.url_for("/hook")), EXTERNAL, session, clock)
    with pytest.raises(DeliveryError) as failed:
        await notifier.send(notification())
    assert (failed.value.reason, failed.value.retryable) == (f"http_{status}", False)
    assert failed.value.retry_after is None


@pytest.fixture
def stalled(httpserver: HTTPServer) -> Iterator[str]:
    """A receiver that does not answer until the test is over."""
    release = threading.Event()

    def hold(_: Request) -> Response:
        release.wait(timeout=10)
        return Response("late")

    httpserver.expect_request("/slow").respond_with_handler(hold)
    yield httpserver.url_for("/slow")
    release.set()


async def test_a_slow_receiver_times_out_retryably(
    stalled: str, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    notifier = WebhookNotifier(receiver(stalled, timeout="200ms"), EXTERNAL, session, clock)
    started = time.monotonic()
    with pytest.raises(DeliveryError) as failed:
        await notifier.send(notification())
    assert (failed.value.reason, failed.value.retryable) == ("timeout", True)
    assert time.monotonic() - started < 5


async def test_a_refused_connection_is_retryable(
    session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook/T0KEN-in-the-path"
    notifier = WebhookNotifier(receiver(url), EXTERNAL, session, clock)
    with pytest.raises(DeliveryError) as failed:
        await notifier.send(notification())
    assert (failed.value.reason, failed.value.retryable) == ("connection", True)
    assert "T0KEN" not in str(failed.value)


@pytest.mark.parametrize(
    ("text", "url", "expected"),
    [
        (
            "bad https://hooks.example/services/T0KEN?x=1 here",
            "https://hooks.example/services/T0KEN?x=1",
            "bad https://hooks.example/… here",
        ),
        (
            "at http://u:pw@h:8080/p",
            "http://u:pw@h:8080/p",
            "at http://h:8080/…",
        ),
        ("nothing to hide", "http://h/p", "nothing to hide"),
    ],
)
def test_urls_are_cut_to_their_origin_in_details(text: str, url: str, expected: str) -> None:
    assert redact_url(text, url) == expected


def test_the_url_is_not_in_the_repr() -> None:
    assert "T0KEN" not in repr(receiver("https://hooks.example/services/T0KEN"))
