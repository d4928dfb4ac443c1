"""What the reliability scenarios share: their sizes, a corpus with injected anomalies, a
fast producer, a signed-webhook receiver and an SMTP receiver that can be taken down, the
count of what arrived, and the result row each scenario records.

Every scenario runs the real thing: `anomalyd worker` in a subprocess, a Kafka-protocol
broker, and receivers on 127.0.0.1. It judges the worker by what reaches the receivers
and the dead-letter topics, never by its internals.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import itertools
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from anomalyd.worker.kafka.admin import free_port
from anomalyd.worker.kafka.statelog import caught_up
from helpers import WorkerProcess, eventually, worker_config

# --- sizes ---------------------------------------------------------------------------------------

#: `ANOMALYD_RELIABILITY=full` (what `make reliability` sets) runs the sizes of the issue;
#: otherwise each scenario runs reduced, in seconds, as part of `make test`.
FULL = os.environ.get("ANOMALYD_RELIABILITY", "").lower() == "full"


def size(fast: Any, full: Any) -> Any:
    """The full value under `make reliability`, else the fast one."""
    return full if FULL else fast


# --- the corpus ----------------------------------------------------------------------------------

#: Normal points sit near 100; an injected anomaly is 1000. Nothing but an anomaly fires.
RULE = {"name": "Injected", "type": "above", "threshold": 500, "severity": "critical"}
NORMAL, SPIKE = 100.0, 1000.0
#: Signs every webhook; the receiver verifies each request with the `standardwebhooks` package.
SECRET = "whsec_" + base64.b64encode(b"reliability-scenarios-secret-32b").decode()


@dataclass(frozen=True, slots=True)
class Anomaly:
    stream: str
    first: int  # index of the stream's first anomalous point
    points: int


@dataclass(frozen=True, slots=True)
class Corpus:
    """Events over many streams, interleaved in time; each anomaly has a stream of its own,
    so it is one alert, expected to be notified firing and then resolved."""

    events: list[dict[str, Any]]
    anomalies: list[Anomaly]

    @property
    def streams(self) -> set[str]:
        return {a.stream for a in self.anomalies}

    def parts(self, n: int, rng: random.Random) -> list[list[dict[str, Any]]]:
        """The events cut at n - 1 random points (in time order)."""
        cuts = sorted(rng.sample(range(1, len(self.events)), n - 1))
        bounds = [0, *cuts, len(self.events)]
        return [self.events[a:b] for a, b in itertools.pairwise(bounds)]


def build_corpus(
    events: int, streams: int, anomalies: int, *, seed: int = 0, prefix: str = "svc"
) -> Corpus:
    """`events` events round-robin over `streams` streams, one point per stream per second of
    event time (ending about now), with `anomalies` spikes of 3 points on distinct streams,
    each followed by normal points so that it resolves."""
    if anomalies > streams:
        raise ValueError("each anomaly needs a stream of its own")
    rng = random.Random(seed)
    points = events // streams
    if points < 12:
        raise ValueError("too few points per stream to inject and resolve an anomaly")
    names = [f"{prefix}{i:05d}.latency_ms" for i in range(streams)]
    injected = [
        Anomaly(name, rng.randrange(4, points - 6), 3) for name in rng.sample(names, anomalies)
    ]
    by_stream = {a.stream: a for a in injected}
    start = time.time() - points
    out = []
    for i in range(points * streams):
        point, name = divmod(i, streams)
        anomaly = by_stream.get(names[name])
        hot = anomaly is not None and anomaly.first <= point < anomaly.first + anomaly.points
        value = SPIKE if hot else NORMAL + rng.gauss(0, 5)
        out.append({"stream": names[name], "ts": start + point, "value": round(value, 3)})
    return Corpus(out, injected)


# --- producing -----------------------------------------------------------------------------------


async def produce_fast(
    bootstrap: str,
    topic: str,
    values: Iterable[dict[str, Any] | tuple[Any, ...]],
    *,
    rate: float | None = None,
    compression: str | None = None,
) -> None:
    """Send many records, pipelined (helpers.produce awaits each one). Events are keyed by
    their stream, as a well-behaved producer does; raw records are given as (key, value)
    or (key, value, timestamp_ms). With `rate`, paces the sends at about that many per
    second; `compression` compresses the batches (e.g. "gzip")."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=5,
        max_request_size=4 * 1024 * 1024,
        compression_type=compression,
    )
    await producer.start()
    started = time.monotonic()
    try:
        pending = []
        for i, item in enumerate(values):
            timestamp_ms = None
            if isinstance(item, dict):
                key, value = item["stream"].encode(), orjson.dumps(item)
            else:
                key, value, *rest = item
                timestamp_ms = rest[0] if rest else None
            pending.append(await producer.send(topic, value, key=key, timestamp_ms=timestamp_ms))
            if len(pending) >= 500:
                await asyncio.gather(*pending)
                pending.clear()
                if rate is not None:  # pacing a load generator, not waiting for a condition
                    ahead = started + (i + 1) / rate - time.monotonic()
                    if ahead > 0:
                        await asyncio.sleep(ahead)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def read_topic(bootstrap: str, topic: str, timeout: float = 60.0) -> list[Any]:
    """Every record of `topic` written so far, from the beginning to its current end."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        assigned = await eventually(consumer.assignment, timeout=timeout, what=f"{topic} assigned")
        ends = await consumer.end_offsets(list(assigned))
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while not await caught_up(consumer, ends):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end in {timeout}s")
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


# --- raw HTTP ------------------------------------------------------------------------------------


async def raw_request(
    port: int, method: str, path: str, headers: bytes = b"", body: bytes = b""
) -> tuple[int, float]:
    """One HTTP/1.1 request written byte for byte (clients refuse to send a header that is
    not ASCII, an attacker does not): the status answered, and the seconds it took."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        ).encode()
        writer.write(head + headers + b"\r\n" + body)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=10)
        return int(status_line.split()[1]), time.monotonic() - started
    finally:
        writer.close()
        await writer.wait_closed()


# --- the worker ----------------------------------------------------------------------------------


def scenario_config(
    tmp_path: Path, bootstrap: str, receivers: Sequence[dict[str, Any]], **sections: Any
) -> tuple[Path, dict[str, Any]]:
    """The scenarios' worker config: the injected-anomaly rule only (no model, no drift, so
    nothing but an injected anomaly alerts), one group per alert, delivered at once."""
    sections.setdefault("model", {"mode": "rules"})
    sections.setdefault("drift", {"enabled": False})
    return worker_config(tmp_path, bootstrap, rules=[RULE], receivers=receivers, **sections)


def second_worker_config(
    tmp_path: Path, config: dict[str, Any], name: str
) -> tuple[Path, dict[str, Any]]:
    """Another worker of the same consumer group: same config, its own HTTP port."""
    other = {**config, "http": {**config["http"], "port": free_port()}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(other))
    return path, other


def metric(worker: WorkerProcess, name: str) -> float:
    """The value of one sample on /metrics (`name` with its labels, as printed), or 0."""
    status, body = worker.get("/metrics")
    if status != 200:
        return 0.0
    for line in body.decode().splitlines():
        sample, _, value = line.rpartition(" ")
        if sample == name:
            return float(value)
    return 0.0


def _status(pid: int, key: str) -> int:
    """A number from /proc/PID/status (Linux): the worker seen from outside."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {key} for process {pid}")


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB."""
    return _status(pid, "VmRSS") / 1024


def threads(pid: int) -> int:
    return _status(pid, "Threads")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# --- what arrived --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Arrival:
    """One notification a receiver accepted: its idempotency key and (stream, status) pairs."""

    id: str
    alerts: tuple[tuple[str, str], ...]
    at: float


@dataclass(slots=True)
class Tally:
    """What a receiver got, counted per anomaly (stream) and status."""

    arrivals: list[Arrival]

    def first_at(self) -> dict[tuple[str, str], float]:
        first: dict[tuple[str, str], float] = {}
        for arrival in self.arrivals:
            for pair in arrival.alerts:
                first.setdefault(pair, arrival.at)
        return first

    def has(self, stream: str, status: str) -> bool:
        return any((stream, status) in a.alerts for a in self.arrivals)

    def complete(self, streams: Iterable[str]) -> bool:
        """Every stream notified firing and resolved."""
        seen = self.first_at()
        return all((s, "firing") in seen and (s, "resolved") in seen for s in streams)

    def notified(self, streams: Iterable[str]) -> int:
        """How many of these anomalies were notified firing and resolved."""
        seen = self.first_at()
        return sum((s, "firing") in seen and (s, "resolved") in seen for s in streams)

    def duplicates(self) -> int:
        """Notifications accepted again under an id accepted before (a receiver drops them)."""
        return len(self.arrivals) - len({a.id for a in self.arrivals})

    def ids_per_pair(self) -> dict[tuple[str, str], set[str]]:
        ids: dict[tuple[str, str], set[str]] = {}
        for arrival in self.arrivals:
            for pair in arrival.alerts:
                ids.setdefault(pair, set()).add(arrival.id)
        return ids

    def unmarked_duplicates(self) -> dict[tuple[str, str], set[str]]:
        """The same alert state sent under different ids: a duplicate no receiver can drop."""
        return {pair: ids for pair, ids in self.ids_per_pair().items() if len(ids) > 1}

    def unexpected(self, streams: Iterable[str]) -> set[str]:
        """Streams notified that had no injected anomaly (false alerts)."""
        wanted = set(streams)
        return {stream for stream, _ in self.first_at() if stream not in wanted}


class WebhookSink:
    """A webhook receiver on 127.0.0.1: verifies every request's Standard Webhooks signature,
    records what it accepts, and can answer 503 or refuse connections (an outage)."""

    def __init__(self, secret: str = SECRET) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.mode = "ok"  # ok | 503
        self.arrivals: list[Arrival] = []
        self.refused = 0  # requests answered 503
        self.bad_signatures: list[str] = []
        self.payloads: list[dict[str, Any]] = []
        self.requests: list[tuple[dict[str, str], bytes]] = []  # accepted: headers, body
        self.secret = secret
        self._webhook = Webhook(secret)
        self._runner: web.AppRunner | None = None

    def receiver(self, name: str = "hook") -> dict[str, Any]:
        return {"type": "webhook", "name": name, "url": self.url, "secret": self.secret}

    @property
    def tally(self) -> Tally:
        return Tally(list(self.arrivals))

    async def start(self) -> WebhookSink:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()
        return self

    async def stop(self) -> None:
        """Close the listener and every open connection: new connections are refused."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            self._webhook.verify(body, headers)
        except WebhookVerificationError as error:
            self.bad_signatures.append(f"{headers.get('webhook-id')}: {error}")
            return web.Response(status=401, text="bad signature")
        if self.mode == "503":
            self.refused += 1
            return web.Response(status=503, text="down for maintenance")
        payload = orjson.loads(body)
        self.payloads.append(payload)
        self.requests.append((headers, body))
        pairs = tuple((a["labels"]["stream"], a["status"]) for a in payload["alerts"])
        self.arrivals.append(Arrival(headers["webhook-id"], pairs, time.monotonic()))
        return web.Response(text="ok")


#: The email receiver's text body: one "status stream" line per alert, easy to count.
MAIL_TEXT = "{% for a in alerts %}{{ a.status }} {{ a.labels.stream }}\n{% endfor %}"


class MailSink:
    """An SMTP server (aiosmtpd) on 127.0.0.1: records each accepted message by its
    notification id, and can answer 451 (try again later) or refuse connections."""

    def __init__(self, **options: Any) -> None:
        self.port = free_port()
        self.options = options  # aiosmtpd Controller options: TLS, authentication
        self.mode = "ok"  # ok | 451
        self.arrivals: list[Arrival] = []
        self.messages: list[email.message.EmailMessage] = []
        self.refused = 0
        self._controller: Controller | None = None

    def receiver(self, name: str = "mail", **extra: Any) -> dict[str, Any]:
        return {
            "type": "email",
            "name": name,
            "smarthost": f"127.0.0.1:{self.port}",
            "from": "anomalyd <alerts@example.com>",
            "to": ["oncall@example.com"],
            "tls": "none",
            "timeout": "5s",
            "text": MAIL_TEXT,
            **extra,
        }

    @property
    def tally(self) -> Tally:
        return Tally(list(self.arrivals))

    def start(self) -> MailSink:
        self._controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            ready_timeout=10,
            server_hostname="localhost",
            **self.options,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.mode == "451":
            self.refused += 1
            return "451 4.3.0 Try again later"
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        self.messages.append(message)
        text = message.get_body(("plain",))
        lines = text.get_content().splitlines() if text is not None else []
        pairs = tuple((stream, status) for status, stream in (ln.split() for ln in lines if ln))
        self.arrivals.append(
            Arrival(message["X-Anomalyd-Notification-Id"], pairs, time.monotonic())
        )
        return "250 Message accepted"


def dead_letters(records: Sequence[Any]) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """The alerts.dlq records as (receiver, reason, (stream, status) pairs)."""
    out = []
    for record in records:
        body = orjson.loads(record.value)
        reason = dict(record.headers)["reason"].decode()
        assert reason, "a dead letter says why"
        assert reason == body["reason"]
        pairs = tuple((a["labels"]["stream"], a["status"]) for a in body["alerts"])
        out.append((body["receiver"], reason, pairs))
    return out


async def settle(tally: Callable[[], Tally], streams: Iterable[str], timeout: float) -> bool:
    """Wait until the tally shows every stream notified firing and resolved; False if that
    has not happened within `timeout` (the scenario then reports what is missing)."""
    wanted = set(streams)
    try:
        await eventually(lambda: tally().complete(wanted), timeout=timeout, interval=0.2)
    except AssertionError:
        return False
    return True


def judge_after_crash(tally: Tally, streams: Iterable[str]) -> None:
    """After a crash: every anomaly paged and resolved; duplicates only under an id the
    receiver has seen (the worker replays from its last commit onto the state saved with
    it, and decides the same alert states again)."""
    wanted = sorted(streams)
    assert [s for s in wanted if not tally.has(s, "firing")] == [], "a page was lost"
    assert [s for s in wanted if not tally.has(s, "resolved")] == [], "a resolution was lost"
    unmarked = tally.unmarked_duplicates()
    assert not unmarked, f"alert states re-sent under a new id: {sorted(unmarked)[:3]}"


# --- results -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the `make reliability` table."""

    scenario: str
    events: int
    anomalies: int
    notified: int
    lost: int
    duplicates: int
    recover_s: float | None
    note: str = ""
    result: str = ""  # the test's outcome: passed, failed, xfail (filled in at the end)
    why: str = ""  # an xfail's reason: the bug

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "result": self.result,
            "events": self.events,
            "anomalies": self.anomalies,
            "notified": self.notified,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "time_to_recover_s": self.recover_s,
            "note": self.note,
            "xfail_reason": self.why,
            "size": "full" if FULL else "fast",
        }


HEADER = (
    "scenario",
    "result",
    "events",
    "anomalies",
    "notified",
    "lost",
    "duplicates",
    "recover",
    "note",
)


def table(rows: Sequence[Row]) -> list[str]:
    """The rows as an aligned text table."""
    cells = [
        (
            r.scenario,
            r.result,
            f"{r.events:,}",
            f"{r.anomalies:,}",
            f"{r.notified:,}",
            f"{r.lost:,}",
            f"{r.duplicates:,}",
            "-" if r.recover_s is None else f"{r.recover_s:.1f} s",
            r.note,
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in [HEADER, *cells]) for i in range(len(HEADER))]
    left = {0, 1, len(HEADER) - 1}

    def line(values: Sequence[str]) -> str:
        parts = [
            v.ljust(w) if i in left else v.rjust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return [line(HEADER), line(["-" * w for w in widths]), *(line(c) for c in cells)]


def counts(values: Iterable[str]) -> str:
    """`a: 3, b: 1`, most common first."""
    return ", ".join(f"{k}: {n}" for k, n in Counter(values).most_common())


@dataclass(slots=True)
class Peak:
    """The largest of a series of samples, and the samples."""

    samples: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.samples.append(value)

    @property
    def max(self) -> float:
        return max(self.samples, default=0.0)


async def sample_worker(
    worker: WorkerProcess, memory: Peak, healthz: Peak, interval: float = 0.5
) -> None:
    """Until cancelled: the worker's RSS (MB) into `memory` and how long /healthz took to
    answer 200 (seconds; inf for any other answer) into `healthz`."""
    while True:
        memory.add(rss_mb(worker.pid))
        asked = time.monotonic()
        status, _ = await asyncio.to_thread(worker.get, "/healthz")
        healthz.add(time.monotonic() - asked if status == 200 else float("inf"))
        await asyncio.sleep(interval)


def corpus_row(
    scenario: str,
    corpus: Corpus,
    anomalies: int,
    tally: Tally,
    recover_s: float | None,
    note: str,
) -> Row:
    """The row of a scenario that produced `corpus`: notified and lost as the receiver saw."""
    notified = tally.notified(corpus.streams)
    return Row(
        scenario,
        len(corpus.events),
        anomalies,
        notified,
        anomalies - notified,
        tally.duplicates(),
        recover_s,
        note,
    )
