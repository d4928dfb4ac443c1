"""The Alertmanager receiver against a real Alertmanager (Debian's prometheus-alertmanager,
started by the test on 127.0.0.1): alerts pushed through the receiver show up in
Alertmanager's own API with our labels, times and fingerprints, and resolve."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio

from anomalyd.alert import firing, resolved
from anomalyd.clock import ManualClock
from anomalyd.config import AlertmanagerReceiver
from anomalyd.domain import Alert, parse_time
from anomalyd.notify import AlertmanagerNotifier, DeliveryError
from anomalyd.notify.notification import Notification
from anomalyd.worker.kafka.admin import free_port
from helpers import eventually

pytestmark = pytest.mark.integration

BINARY = "prometheus-alertmanager"
EXTERNAL = "http://anomalyd.test:6066"
CONFIG = """
route: {receiver: blackhole, group_wait: 1h, group_interval: 1h, repeat_interval: 4h}
receivers: [{name: blackhole}]
"""


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=2) as response:
        return orjson.loads(response.read())


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """A real Alertmanager on a free port; its base URL."""
    binary = shutil.which(BINARY) or shutil.which("alertmanager")
    if binary is None:
        pytest.skip(
            f"{BINARY} is not installed (Debian/Ubuntu: apt-get install prometheus-alertmanager;"
            " .ci/run installs it when it can)"
        )
    (tmp_path / "alertmanager.yml").write_text(CONFIG)
    port = free_port()
    log = (tmp_path / "alertmanager.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            f"--storage.path={tmp_path / 'data'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _ready(url):
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                output = (tmp_path / "alertmanager.log").read_text(errors="replace")
                raise AssertionError(f"Alertmanager did not start:\n{output[-2000:]}")
            time.sleep(0.05)  # polling its readiness with a deadline
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def receiver(url: str, **extra: Any) -> AlertmanagerReceiver:
    fields = {"type": "alertmanager", "name": "am", "url": url, **extra}
    return AlertmanagerReceiver.model_validate(fields)


def notification(*alerts: Alert) -> Notification:
    return Notification("am", '{}:{alertname="LatencyHigh"}', {}, alerts, "n1")


def alerts_in(url: str) -> dict[str, dict[str, Any]]:
    """Alertmanager's active alerts by fingerprint."""
    return {alert["fingerprint"]: alert for alert in _get(f"{url}/api/v2/alerts")}


LABELS = {"alertname": "LatencyHigh", "stream": "checkout", "severity": "critical"}


async def test_firing_alerts_arrive_as_sent(
    alertmanager: str, session: aiohttp.ClientSession
) -> None:
    now = time.time()
    first = firing(LABELS, {"summary": "1250 ms", "value": "1250"}, now - 30, EXTERNAL)
    second = firing({**LABELS, "stream": "search"}, {"summary": "900 ms"}, now - 10, EXTERNAL)
    notifier = AlertmanagerNotifier(receiver(alertmanager), session, ManualClock(now))

    await notifier.send(notification(first, second))

    active = alerts_in(alertmanager)
    # The same fingerprint on both sides: ours is Alertmanager's label-set hash.
    assert set(active) == {first.fingerprint, second.fingerprint}
    got = active[first.fingerprint]
    assert got["labels"] == LABELS
    assert got["annotations"] == {"summary": "1250 ms", "value": "1250"}
    assert got["generatorURL"] == first.generator_url
    assert got["status"]["state"] == "active"
    assert parse_time(got["startsAt"]) == pytest.approx(first.starts_at, abs=0.001)
    assert parse_time(got["endsAt"]) == pytest.approx(now + 300, abs=0.001)  # firing_ttl


async def test_resolving_removes_the_alert(
    alertmanager: str, session: aiohttp.ClientSession
) -> None:
    now = time.time()
    alert = firing(LABELS, {"summary": "1250 ms"}, now - 30, EXTERNAL)
    clock = ManualClock(now)
    notifier = AlertmanagerNotifier(receiver(alertmanager), session, clock)
    await notifier.send(notification(alert))
    assert alert.fingerprint in alerts_in(alertmanager)

    clock.advance(1)
    await notifier.send(notification(resolved(alert, now - 1)))

    await eventually(
        lambda: alert.fingerprint not in alerts_in(alertmanager),
        timeout=10,
        what="Alertmanager to drop the resolved alert",
    )


async def test_a_resend_extends_the_alert(
    alertmanager: str, session: aiohttp.ClientSession
) -> None:
    now = time.time()
    alert = firing(LABELS, {"summary": "1250 ms"}, now - 30, EXTERNAL)
    clock = ManualClock(now)
    notifier = AlertmanagerNotifier(receiver(alertmanager, firing_ttl="2m"), session, clock)
    await notifier.send(notification(alert))
    clock.advance(60)  # the pipeline's repeat
    await notifier.send(notification(alert))

    got = alerts_in(alertmanager)[alert.fingerprint]
    assert parse_time(got["endsAt"]) == pytest.approx(now + 60 + 120, abs=0.001)
    assert parse_time(got["startsAt"]) == pytest.approx(alert.starts_at, abs=0.001)


async def test_without_a_resend_alertmanager_resolves_after_the_ttl(
    alertmanager: str, session: aiohttp.ClientSession
) -> None:
    """Why the pipeline must repeat within firing_ttl: a silent anomalyd (crashed, cut off)
    stops paging by itself instead of leaving an alert firing forever."""
    alert = firing(LABELS, {"summary": "1250 ms"}, time.time() - 30, EXTERNAL)
    clock = ManualClock(time.time() - 298)  # sent "298 s ago" with a 300 s ttl: ends in ~2 s
    await AlertmanagerNotifier(receiver(alertmanager), session, clock).send(notification(alert))
    assert alert.fingerprint in alerts_in(alertmanager)
    await eventually(
        lambda: alert.fingerprint not in alerts_in(alertmanager),
        timeout=15,
        what="the alert to expire in Alertmanager",
    )


async def test_alertmanager_refusing_an_alert_is_not_retried(
    alertmanager: str, session: aiohttp.ClientSession
) -> None:
    bad = firing({"alertname": "X", "not a label name": "v"}, {}, time.time(), EXTERNAL)
    notifier = AlertmanagerNotifier(receiver(alertmanager), session, ManualClock(time.time()))
    with pytest.raises(DeliveryError) as failed:
        await notifier.send(notification(bad))
    assert (failed.value.reason, failed.value.retryable) == ("http_400", False)


async def test_an_unreachable_alertmanager_is_retryable(session: aiohttp.ClientSession) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    notifier = AlertmanagerNotifier(receiver(url), session, ManualClock(time.time()))
    alert = firing(LABELS, {}, time.time(), EXTERNAL)
    with pytest.raises(DeliveryError) as failed:
        await notifier.send(notification(alert))
    assert (failed.value.reason, failed.value.retryable) == ("connection", True)
