"""What a receiver's answer may do to the webhook and Alertmanager receivers, against a real
HTTP server on 127.0.0.1: a redirect is never followed (a POST turned into a body-less GET
would count as delivered while nobody got the alert) and fails for good, saying where it
pointed; a huge answer is read only up to a small cap, the rest dropped with the
connection."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
import pytest_asyncio
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from anomalyd.alert import firing
from anomalyd.clock import ManualClock
from anomalyd.config import AlertmanagerReceiver, WebhookReceiver
from anomalyd.notify import AlertmanagerNotifier, DeliveryError, WebhookNotifier
from anomalyd.notify.notification import Notification, Notifier
from anomalyd.notify.receivers import _http

EXTERNAL = "http://anomalyd.test:6066"
TOKEN_PATH = "/hook/T0KEN"
#: What the large answers below would send in full.
LARGE_BYTES = 50 * 1024 * 1024
CHUNK = b"x" * 65_536


def notification() -> Notification:
    alert = firing({"alertname": "High", "stream": "cpu"}, {"summary": "hi"}, time.time(), "")
    return Notification("oncall", "{}:{}", {}, (alert,), "n-1")


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def notifier(kind: str, base: str, session: aiohttp.ClientSession) -> Notifier:
    """A webhook receiver posting to `base + TOKEN_PATH`, or an Alertmanager receiver at `base`
    (which posts to `base/api/v2/alerts`)."""
    clock = ManualClock(time.time())
    if kind == "webhook":
        hook = WebhookReceiver.model_validate(
            {"type": "webhook", "name": "oncall", "url": base + TOKEN_PATH}
        )
        return WebhookNotifier(hook, EXTERNAL, session, clock)
    manager = AlertmanagerReceiver.model_validate(
        {"type": "alertmanager", "name": "oncall", "url": base}
    )
    return AlertmanagerNotifier(manager, session, clock)


def path_of(kind: str) -> str:
    return TOKEN_PATH if kind == "webhook" else "/api/v2/alerts"


KINDS = ["webhook", "alertmanager"]


# --- redirects -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_is_not_followed_and_not_retried(
    httpserver: HTTPServer, session: aiohttp.ClientSession, kind: str, status: int
) -> None:
    """301/302/303 followed would become a GET with no body, whose 200 counts as delivered;
    307/308 would re-send to a URL nobody configured. Each is a failure for good."""
    moved = httpserver.url_for("/moved/S3CRET?sig=abc")
    httpserver.expect_request(path_of(kind), method="POST").respond_with_data(
        "", status, {"Location": moved}
    )
    httpserver.expect_request("/moved/S3CRET").respond_with_data("ok")
    base = httpserver.url_for("").rstrip("/")

    with pytest.raises(DeliveryError) as failed:
        await notifier(kind, base, session).send(notification())

    assert (failed.value.reason, failed.value.retryable) == (f"http_{status}", False)
    assert failed.value.detail == f"redirect {status} to {base}/…"
    assert "S3CRET" not in str(failed.value)  # where it pointed, cut to the origin
    assert [request.path for request, _ in httpserver.log] == [path_of(kind)]


@pytest.mark.parametrize(
    ("location", "said"),
    [
        ("/elsewhere", "redirect 302 to {base}/…"),  # relative to the request's URL
        ("https://other.example:8443/x?token=1", "redirect 302 to https://other.example:8443/…"),
        ("mailto:ops@example.com", "redirect 302 to an invalid URL"),
        (None, "redirect 302 with no Location"),
    ],
)
async def test_a_redirect_says_where_it_pointed(
    httpserver: HTTPServer, session: aiohttp.ClientSession, location: str | None, said: str
) -> None:
    headers = {"Location": location} if location is not None else {}
    httpserver.expect_request(TOKEN_PATH).respond_with_data("", 302, headers)
    base = httpserver.url_for("").rstrip("/")
    with pytest.raises(DeliveryError) as failed:
        await notifier("webhook", base, session).send(notification())
    assert failed.value.detail == said.format(base=base)


@pytest.mark.parametrize("location", ["http://h:99999/", "http://[::1", "mailto:ops@example.com"])
def test_a_redirect_to_an_invalid_url_says_so(location: str) -> None:
    error = _http.redirect_error(308, location, "https://hooks.example/T0KEN")
    assert error.detail == "redirect 308 to an invalid URL"


# --- large answers ---------------------------------------------------------------------------


class Endless:
    """A streamed answer of LARGE_BYTES; counts what the server managed to hand over."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.sent = 0
        self.stopped = threading.Event()

    def __call__(self, _: Request) -> Response:
        return Response(self._chunks(), status=self.status, mimetype="text/plain")

    def _chunks(self) -> Iterator[bytes]:
        try:
            while self.sent < LARGE_BYTES:
                self.sent += len(CHUNK)
                yield CHUNK
        finally:  # the client closed the connection, or everything was sent
            self.stopped.set()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("status", "fails"), [(200, False), (500, True)])
async def test_a_huge_answer_is_read_only_up_to_the_cap(
    httpserver: HTTPServer,
    session: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    status: int,
    fails: bool,
) -> None:
    answer = Endless(status)
    httpserver.expect_request(path_of(kind), method="POST").respond_with_handler(answer)
    reads: list[int] = []
    read_answer = _http.read_answer

    async def counted(response: aiohttp.ClientResponse, limit: int = _http.ANSWER_BYTES) -> bytes:
        head = await read_answer(response, limit)
        reads.append(len(head))
        return head

    monkeypatch.setattr(_http, "read_answer", counted)
    send = notifier(kind, httpserver.url_for("").rstrip("/"), session).send(notification())

    if fails:
        with pytest.raises(DeliveryError) as failed:
            await send
        assert (failed.value.reason, failed.value.retryable) == ("http_500", True)
        assert len(failed.value.detail) < 300
    else:
        await send

    assert reads == [_http.ANSWER_BYTES]
    # The connection was dropped: the server stops well short of the whole answer.
    assert await asyncio.to_thread(answer.stopped.wait, 10)
    assert answer.sent < LARGE_BYTES // 2


async def test_read_answer_reads_a_small_answer_whole(
    httpserver: HTTPServer, session: aiohttp.ClientSession
) -> None:
    httpserver.expect_request("/small").respond_with_data("x" * 1000)
    async with session.get(httpserver.url_for("/small")) as response:
        assert await _http.read_answer(response, limit=4096) == b"x" * 1000
        assert not response.closed or response.connection is None


async def test_read_answer_stops_at_its_limit(
    httpserver: HTTPServer, session: aiohttp.ClientSession
) -> None:
    answer = Endless(200)
    httpserver.expect_request("/large").respond_with_handler(answer)
    async with session.get(httpserver.url_for("/large")) as response:
        head = await _http.read_answer(response, limit=100_000)
        assert head == (CHUNK * 2)[:100_000]
        assert response.connection is None  # closed, not kept for reuse
    assert await asyncio.to_thread(answer.stopped.wait, 10)
    assert answer.sent < LARGE_BYTES // 2
