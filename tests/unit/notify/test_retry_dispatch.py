"""Delivery: the retry policy's pure decisions, the retry stage around the deliver stage
with fake notifiers and a fake sleep on a manual clock, and the webhook notifier against a
real HTTP server."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import aiohttp
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from anomalyd.alert import firing
from anomalyd.clock import ManualClock
from anomalyd.config import DeliverySection, WebhookReceiver
from anomalyd.domain import Alert
from anomalyd.metrics import Metrics
from anomalyd.notify import (
    DeadLetter,
    DeliveryError,
    Notification,
    RetryPolicy,
    WebhookNotifier,
    parse_retry_after,
)
from anomalyd.notify.deliver import DeliverStage
from anomalyd.notify.retry import RetryStage
from anomalyd.notify.stage import FlushContext

T0 = 1_700_000_000.0
URL = "http://anomalyd.test:6066"
ALERT = firing({"alertname": "high", "stream": "cpu"}, {"summary": "cpu is high"}, T0, URL)


def retryable(reason: str = "http_503", retry_after: float | None = None) -> DeliveryError:
    return DeliveryError(
        reason, "the receiver answered 503", retryable=True, retry_after=retry_after
    )


def fatal(reason: str = "http_410") -> DeliveryError:
    return DeliveryError(reason, "the receiver answered 410", retryable=False)


# --- RetryPolicy --------------------------------------------------------------------------------


def test_from_config() -> None:
    section = DeliverySection(max_attempts=3, initial_backoff="1s", max_backoff="1m", max_age="2h")
    assert RetryPolicy.from_config(section) == RetryPolicy(3, 1.0, 60.0, 7200.0)


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [(1, 0.25, 0.5), (2, 0.5, 1.0), (3, 1.0, 2.0), (4, 2.0, 4.0), (8, 30.0, 60.0), (9, 30, 60)],
)
def test_delay_bounds_per_attempt(attempt: int, low: float, high: float) -> None:
    policy = RetryPolicy(initial_backoff=0.5, max_backoff=60.0)
    rng = random.Random(42)
    delays = [policy.delay(attempt, rng) for _ in range(200)]
    assert all(low <= d <= high for d in delays)
    assert max(delays) - min(delays) > (high - low) / 2  # jittered, not constant


def test_delay_is_deterministic_for_a_seed() -> None:
    policy = RetryPolicy()
    first = [policy.delay(a, random.Random(7)) for a in range(1, 9)]
    assert first == [policy.delay(a, random.Random(7)) for a in range(1, 9)]


@given(
    attempt=st.integers(1, 100),
    initial=st.floats(0.001, 10.0),
    extra=st.floats(0.0, 1000.0),
    seed=st.integers(0, 2**32),
)
def test_delay_property(attempt: int, initial: float, extra: float, seed: int) -> None:
    policy = RetryPolicy(initial_backoff=initial, max_backoff=initial + extra)
    ceiling = min(policy.max_backoff, initial * 2.0 ** (attempt - 1))
    assert ceiling / 2 <= policy.delay(attempt, random.Random(seed)) <= ceiling


@pytest.mark.parametrize(
    ("retry_after", "low", "high"),
    [
        (None, 0.5, 1.0),
        (0.1, 0.5, 1.0),  # below the backoff: the backoff wins
        (7.0, 7.0, 7.0),  # above it: a floor
        (5000.0, 3600.0, 3600.0),  # capped by max_age
    ],
)
def test_retry_after_is_a_floor_capped_by_max_age(
    retry_after: float | None, low: float, high: float
) -> None:
    policy = RetryPolicy(initial_backoff=0.5, max_backoff=60.0, max_age=3600.0)
    delay = policy.delay(2, random.Random(3), retry_after)
    assert low <= delay <= high


@given(
    attempt=st.integers(1, 20),
    retry_after=st.floats(0, 1e6),
    max_age=st.floats(1, 1e5),
    seed=st.integers(0, 2**32),
)
def test_retry_after_property(attempt: int, retry_after: float, max_age: float, seed: int) -> None:
    policy = RetryPolicy(max_age=max_age)
    delay = policy.delay(attempt, random.Random(seed), retry_after)
    assert delay >= min(retry_after, max_age)
    assert delay == max(policy.delay(attempt, random.Random(seed)), min(retry_after, max_age))


POLICY = RetryPolicy(max_attempts=5, max_age=100.0)

GIVE_UP_CASES = [
    (fatal("http_410"), 1, 0.0, 1.0, "not retryable: http_410"),
    (fatal("http_400"), 3, 50.0, 1.0, "not retryable: http_400"),  # checked first
    (retryable(), 1, 0.0, 1.0, None),
    (retryable(), 4, 0.0, 1.0, None),
    (retryable(), 5, 0.0, 1.0, "gave up after 5 attempts: http_503"),
    (retryable(), 6, 0.0, 1.0, "gave up after 6 attempts: http_503"),
    (retryable("timeout"), 2, 99.0, 1.0, None),  # exactly at max_age is still fine
    (retryable("timeout"), 2, 99.0, 1.5, "gave up after 99s (max_age 100s): timeout"),
    (retryable("connection"), 2, 150.0, 0.0, "gave up after 150s (max_age 100s): connection"),
]


@pytest.mark.parametrize(("error", "attempt", "age", "delay", "expected"), GIVE_UP_CASES)
def test_give_up_reason(
    error: DeliveryError, attempt: int, age: float, delay: float, expected: str | None
) -> None:
    assert POLICY.give_up_reason(error, attempt, age, delay) == expected


# --- RetryStage around DeliverStage ------------------------------------------------------------

GROUP_KEY = '{}:{alertname="high"}'
ID = "0123456789abcdef0123456789abcdef"


def context(receiver: str) -> FlushContext:
    return FlushContext(
        now=T0,
        receiver=receiver,
        group_key=GROUP_KEY,
        group_labels={"alertname": "high"},
        repeat_interval=3600.0,
        notification_id=ID,
    )


def letter(
    receiver: str, reason: str, attempts: int, alerts: tuple[Alert, ...], detail: str
) -> DeadLetter:
    return DeadLetter(receiver, reason, attempts, alerts, GROUP_KEY, ID, detail)


class Scripted:
    """A notifier that fails as scripted, then succeeds."""

    def __init__(self, name: str, failures: Sequence[DeliveryError] = ()) -> None:
        self.name = name
        self._failures = list(failures)
        self.calls: list[tuple[Alert, ...]] = []

    async def send(self, notification: Notification) -> None:
        self.calls.append(notification.alerts)
        if self._failures:
            raise self._failures.pop(0)


class Failing(Scripted):
    """A notifier that always fails with the same error."""

    def __init__(self, name: str, error: DeliveryError) -> None:
        super().__init__(name)
        self._error = error

    async def send(self, notification: Notification) -> None:
        self.calls.append(notification.alerts)
        raise self._error


class FakeSleep:
    """Records each delay and moves the clock instead of waiting."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.clock.advance(seconds)


class Harness:
    def __init__(self, notifiers: Sequence[Scripted], policy: RetryPolicy, seed: int = 1) -> None:
        self.clock = ManualClock(T0)
        self.sleep = FakeSleep(self.clock)
        self.metrics = Metrics()
        self.dead: list[DeadLetter] = []
        self.seed = seed
        self.names = [n.name for n in notifiers]
        self.stage = RetryStage(
            DeliverStage({n.name: n for n in notifiers}),
            policy,
            self.clock,
            self._dead_letter,
            self.metrics,
            sleep=self.sleep,
            rng=random.Random(seed),
        )
        self.outcomes: list[str] = []

    async def send(self, alert: Alert) -> None:
        """Each receiver's notification of one alert, side by side."""
        results = await asyncio.gather(
            *(self.stage.exec(context(name), (alert,)) for name in self.names)
        )
        self.outcomes.extend(ctx.outcome for ctx, _ in results)

    async def _dead_letter(self, letter: DeadLetter) -> None:
        self.dead.append(letter)

    def deliveries(self, receiver: str, outcome: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "anomalyd_deliveries_total", {"receiver": receiver, "outcome": outcome}
        )
        return value or 0.0

    def dead_lettered(self, receiver: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "anomalyd_notifications_dead_lettered_total", {"receiver": receiver}
        )
        return value or 0.0

    def delivered(self, receiver: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "anomalyd_delivery_seconds_count", {"receiver": receiver}
        )
        return value or 0.0


async def test_success_at_the_first_try() -> None:
    notifier = Scripted("team")
    h = Harness([notifier], RetryPolicy())
    await h.send(ALERT)
    assert notifier.calls == [(ALERT,)]
    assert h.sleep.delays == []
    assert h.dead == []
    assert h.outcomes == ["delivered"]
    assert h.deliveries("team", "ok") == 1
    assert h.delivered("team") == 1


async def test_retryable_errors_then_success() -> None:
    policy = RetryPolicy(max_attempts=5, initial_backoff=1.0, max_backoff=60.0)
    notifier = Scripted("team", [retryable(), retryable(), retryable("timeout")])
    h = Harness([notifier], policy, seed=5)
    await h.send(ALERT)
    assert len(notifier.calls) == 4
    replay = random.Random(5)
    assert h.sleep.delays == [policy.delay(a, replay) for a in (1, 2, 3)]
    assert h.dead == []
    assert h.deliveries("team", "http_503") == 2
    assert h.deliveries("team", "timeout") == 1
    assert h.deliveries("team", "ok") == 1
    assert h.dead_lettered("team") == 0
    # the latency observed is the time the retries took on the injected clock
    total = h.metrics.registry.get_sample_value(
        "anomalyd_delivery_seconds_sum", {"receiver": "team"}
    )
    assert total == pytest.approx(sum(h.sleep.delays))


async def test_retry_after_is_honoured() -> None:
    notifier = Scripted("team", [retryable(retry_after=7.0)])
    h = Harness([notifier], RetryPolicy(initial_backoff=0.5))
    await h.send(ALERT)
    assert h.sleep.delays == [7.0]
    assert h.deliveries("team", "ok") == 1


async def test_non_retryable_goes_to_dead_letter_once() -> None:
    notifier = Scripted("team", [fatal("http_410"), retryable()])
    h = Harness([notifier], RetryPolicy())
    await h.send(ALERT)
    assert len(notifier.calls) == 1
    assert h.sleep.delays == []
    assert h.dead == [
        letter("team", "not retryable: http_410", 1, (ALERT,), "the receiver answered 410")
    ]
    assert h.outcomes == ["dead_lettered"]
    assert h.deliveries("team", "http_410") == 1
    assert h.deliveries("team", "ok") == 0
    assert h.dead_lettered("team") == 1


async def test_exhausting_max_attempts_dead_letters() -> None:
    notifier = Failing("team", retryable())
    h = Harness([notifier], RetryPolicy(max_attempts=4))
    await h.send(ALERT)
    assert len(notifier.calls) == 4
    assert len(h.sleep.delays) == 3
    assert h.dead == [
        letter(
            "team", "gave up after 4 attempts: http_503", 4, (ALERT,), "the receiver answered 503"
        )
    ]
    assert h.deliveries("team", "http_503") == 4
    assert h.dead_lettered("team") == 1
    assert h.delivered("team") == 0


async def test_max_age_dead_letters() -> None:
    policy = RetryPolicy(max_attempts=100, initial_backoff=1.0, max_backoff=10.0, max_age=30.0)
    notifier = Failing("team", retryable("timeout"))
    h = Harness([notifier], policy, seed=9)
    await h.send(ALERT)
    [letter] = h.dead
    attempts = len(notifier.calls)
    assert letter.attempts == attempts
    assert letter.reason.endswith("(max_age 30s): timeout")
    # replay the same jitter: the next wait would have gone past max_age, none before did
    replay = random.Random(9)
    planned = [policy.delay(a, replay) for a in range(1, attempts + 1)]
    assert h.sleep.delays == planned[:-1]
    assert sum(planned[:-1]) <= 30.0 < sum(planned)


async def test_retry_after_beyond_max_age_dead_letters() -> None:
    policy = RetryPolicy(max_age=10.0)
    notifier = Failing("team", retryable(retry_after=3600.0))
    h = Harness([notifier], policy)
    await h.send(ALERT)
    # capped at max_age: one wait of exactly max_age is allowed, then the age runs out
    assert h.sleep.delays == [10.0]
    assert len(h.dead) == 1
    assert "max_age" in h.dead[0].reason


async def test_two_notifiers_are_independent() -> None:
    broken = Scripted("broken", [fatal("http_404")])
    flaky = Scripted("flaky", [retryable(), retryable()])
    fine = Scripted("fine")
    h = Harness([broken, flaky, fine], RetryPolicy())
    await h.send(ALERT)
    assert [len(n.calls) for n in (broken, flaky, fine)] == [1, 3, 1]
    assert [d.receiver for d in h.dead] == ["broken"]
    assert h.deliveries("broken", "ok") == 0
    assert h.deliveries("flaky", "ok") == 1
    assert h.deliveries("fine", "ok") == 1
    assert h.dead_lettered("broken") == 1
    assert h.dead_lettered("flaky") == 0


async def test_each_alert_is_retried_on_its_own() -> None:
    notifier = Scripted("team", [fatal()])
    h = Harness([notifier], RetryPolicy())
    second = firing({"alertname": "low"}, {}, T0, URL)
    await h.send(ALERT)
    await h.send(second)
    assert notifier.calls == [(ALERT,), (second,)]
    assert [d.alerts for d in h.dead] == [(ALERT,)]


# --- WebhookNotifier against a real HTTP server -------------------------------------------------


def receiver(url: str, **kw: Any) -> WebhookReceiver:
    return WebhookReceiver(type="webhook", name="hook", url=url, **kw)


async def send(notifier_receiver: WebhookReceiver, clock: ManualClock | None = None) -> None:
    async with aiohttp.ClientSession() as session:
        notifier = WebhookNotifier(notifier_receiver, URL, session, clock or ManualClock(T0))
        await notifier.send(Notification("hook", GROUP_KEY, {}, (ALERT,), ID))


async def test_webhook_200_posts_the_v4_payload(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request("/hook", method="POST").respond_with_data("ok")
    await send(receiver(httpserver.url_for("/hook"), headers={"X-Token": "secret"}))
    httpserver.check_assertions()
    [(request, _)] = httpserver.log
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Token"] == "secret"
    body = orjson.loads(request.get_data())
    assert body["version"] == "4"
    assert body["receiver"] == "hook"
    assert body["status"] == "firing"
    assert body["externalURL"] == URL
    assert body["alerts"] == [ALERT.to_json()]


@pytest.mark.parametrize("status", [200, 201, 204, 299])
async def test_webhook_2xx_is_success(httpserver: HTTPServer, status: int) -> None:
    httpserver.expect_request("/hook").respond_with_data("", status=status)
    await send(receiver(httpserver.url_for("/hook")))


async def test_webhook_503_with_retry_after(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook").respond_with_data(
        "busy", status=503, headers={"Retry-After": "7"}
    )
    with pytest.raises(DeliveryError) as caught:
        await send(receiver(httpserver.url_for("/hook")))
    assert caught.value.reason == "http_503"
    assert caught.value.retryable
    assert caught.value.retry_after == 7.0


async def test_webhook_retry_after_as_a_date(httpserver: HTTPServer) -> None:
    later = format_datetime(datetime.fromtimestamp(T0 + 30, tz=UTC), usegmt=True)
    httpserver.expect_request("/hook").respond_with_data(
        "", status=429, headers={"Retry-After": later}
    )
    with pytest.raises(DeliveryError) as caught:
        await send(receiver(httpserver.url_for("/hook")), ManualClock(T0))
    assert caught.value.retryable
    assert caught.value.retry_after == 30.0


@pytest.mark.parametrize(
    ("status", "is_retryable"),
    [
        (400, False),
        (401, False),
        (404, False),
        (410, False),
        (413, False),
        (408, True),
        (425, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
    ],
)
async def test_webhook_status_codes(
    httpserver: HTTPServer, status: int, is_retryable: bool
) -> None:
    httpserver.expect_request("/hook").respond_with_data(
        "", status=status, headers={"Retry-After": "3"}
    )
    with pytest.raises(DeliveryError) as caught:
        await send(receiver(httpserver.url_for("/hook")))
    assert caught.value.reason == f"http_{status}"
    assert caught.value.retryable is is_retryable
    # a hint to come back is meaningless when coming back cannot help
    assert caught.value.retry_after == (3.0 if is_retryable else None)


async def test_webhook_connection_refused_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # nothing listens on the port now
    with pytest.raises(DeliveryError) as caught:
        await send(receiver(f"http://127.0.0.1:{port}/hook"))
    assert caught.value.reason == "connection"
    assert caught.value.retryable


async def test_webhook_slow_server_times_out(httpserver: HTTPServer) -> None:
    gave_up = threading.Event()

    def slow(request: Request) -> Response:
        # The server being slow (up to 1 s), not the test waiting; it stops stalling once the
        # client has given up so the next test gets a free server.
        gave_up.wait(1.0)
        return Response("late")

    httpserver.expect_request("/hook").respond_with_handler(slow)
    started = time.monotonic()
    try:
        with pytest.raises(DeliveryError) as caught:
            await send(receiver(httpserver.url_for("/hook"), timeout="200ms"))
    finally:
        gave_up.set()
    assert caught.value.reason == "timeout"
    assert caught.value.retryable
    assert time.monotonic() - started < 0.9


async def test_webhook_odd_retry_after_is_still_a_delivery_error() -> None:
    # werkzeug cannot send a UTF-8 header value; a raw server can, and aiohttp hands it on as
    # '²', which str.isdigit() accepts and float() does not.
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write("HTTP/1.1 503 Busy\r\nRetry-After: ²\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(DeliveryError) as caught:
            await send(receiver(f"http://127.0.0.1:{port}/hook"))
    finally:
        server.close()
        await server.wait_closed()
    assert caught.value.reason == "http_503"
    assert caught.value.retryable
    assert caught.value.retry_after is None


async def test_webhook_failures_through_the_dispatcher(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook").respond_with_data("gone", status=410)
    clock = ManualClock(T0)
    metrics = Metrics()
    dead: list[DeadLetter] = []

    async def dead_letter(letter: DeadLetter) -> None:
        dead.append(letter)

    async with aiohttp.ClientSession() as session:
        notifier = WebhookNotifier(receiver(httpserver.url_for("/hook")), URL, session, clock)
        deliver = DeliverStage({"hook": notifier})
        stage = RetryStage(deliver, RetryPolicy(), clock, dead_letter, metrics)
        await stage.exec(context("hook"), (ALERT,))
    assert [(d.receiver, d.reason, d.attempts) for d in dead] == [
        ("hook", "not retryable: http_410", 1)
    ]


# --- parse_retry_after --------------------------------------------------------------------------

NOW = 1_445_412_400.0  # Wed, 21 Oct 2015 07:26:40 GMT


@pytest.mark.parametrize(
    ("value", "now", "expected"),
    [
        (None, NOW, None),
        ("", NOW, None),
        ("0", NOW, 0.0),
        ("7", NOW, 7.0),
        (" 120 ", NOW, 120.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", NOW, 80.0),
        ("Wed, 21 Oct 2015 07:28:00 +0000", NOW, 80.0),
        ("Wed, 21 Oct 2015 09:28:00 +0200", NOW, 80.0),
        ("Wed, 21 Oct 2015 07:00:00 GMT", NOW, 0.0),  # in the past: now
        ("Wed, 21 Oct 2015 07:28:00 GMT", None, None),  # a date needs a now
        ("-1", NOW, None),
        ("1.5", NOW, None),
        ("soon", NOW, None),
        ("Wed, 32 Oct 2015 07:28:00 GMT", NOW, None),
        ("²", NOW, None),  # a digit to str.isdigit, not to float
        ("٣", NOW, None),  # an Arabic-Indic digit: not delta-seconds either
    ],
)
def test_parse_retry_after(value: str | None, now: float | None, expected: float | None) -> None:
    assert parse_retry_after(value, now) == expected


@given(
    st.one_of(
        st.text(max_size=40),
        st.text(alphabet=st.characters(categories=["Nd", "No", "Zs"]), max_size=5),
    ),
    st.floats(0, 4e9),
)
def test_parse_retry_after_never_fails(value: str, now: float) -> None:
    result = parse_retry_after(value, now)
    assert result is None or result >= 0.0
