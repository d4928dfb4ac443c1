"""Delivery's replicated state, record by record: what goes into the three compacted
topics and what is made of what comes back (from this worker's past or from others).

- `topics.alert_state`: key `fingerprint@start` (`group.episode_key`) -> `{alert, shard,
  offset, receivedAt}`, the alert episodes held in groups (an alert that fired again
  before its earlier episode was notified has two) and the alerts-topic partition and
  offset each came from; a deletion when an episode has left every group, followed by the
  marker
  `offset/<shard>` -> `{shard, offset}` (the deletion took that offset away). The
  highest offset per shard tells a new owner which replayed alerts it already holds.
- `topics.notify_log`: key `receiver:groupKey` -> the nflog entry (`nflog.LogEntry`).
- `topics.silences`: key silence id -> the silence, as the API shows it.

A record this version cannot read is logged and skipped: nothing can act on it, and it
must not stop the others. Anyone who can write these topics can write anything: a silence
read back is held to what the API accepts (its id is its key, it has an end, its matchers
and times are valid, its regexes RE2's), and a key that is not UTF-8 is skipped too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import orjson
import structlog

from anomalyd.clock import Clock
from anomalyd.config.routing import Silence
from anomalyd.config.schema import TopicsSection
from anomalyd.domain import Alert
from anomalyd.notify.group import Held, episode_key
from anomalyd.notify.nflog import LogEntry, NotificationLog
from anomalyd.notify.silence import Silences
from anomalyd.worker.kafka.statelog import Handler

_log = structlog.get_logger(__name__)

#: Expired silences are kept this long for the API, as in Alertmanager (120 h).
SILENCE_RETENTION_S = 120 * 3600.0
_OFFSET_KEY = b"offset/"

T = TypeVar("T")


class StateStore(Protocol):
    """Where the records go (`statelog.StateLog`; an in-memory double in tests)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def catch_up(self) -> None: ...

    async def put(self, topic: str, key: bytes, value: bytes | None) -> None: ...


class NotifyState:
    def __init__(self, topics: TopicsSection, silences: Silences, clock: Clock) -> None:
        self._topics = topics
        self._clock = clock
        self._store: StateStore | None = None
        self.silences = silences
        self.nflog = NotificationLog(self._put_log)
        self.held: dict[str, Held] = {}  # every worker's alert episodes in groups
        self.applied: dict[int, int] = {}  # shard -> highest alerts offset in the groups
        #: Episodes read from a record keyed by fingerprint alone (written by an earlier
        #: version): forgetting one deletes that record too, or it would come back.
        self._legacy_keys: dict[str, bytes] = {}

    def handlers(self) -> dict[str, Handler]:
        return {
            self._topics.silences: self._read_silence,
            self._topics.notify_log: self._read_log,
            self._topics.alert_state: self._read_held,
        }

    def bind(self, store: StateStore) -> None:
        self._store = store

    # -- out ----------------------------------------------------------------------------------

    async def hold(self, held: Held, offset: int) -> None:
        """Note an alert episode held in groups, read at `offset` of its shard."""
        key = episode_key(held.alert)
        self.held[key] = held
        body = {
            "alert": held.alert.to_json(),
            "shard": held.shard,
            "offset": offset,
            "receivedAt": held.received_at,
        }
        await self._put(self._topics.alert_state, key.encode(), orjson.dumps(body))

    async def forget(self, held: Held) -> None:
        """An episode left every group: delete it, and note how far its shard was read
        (the deletion takes its offset away)."""
        key = episode_key(held.alert)
        if self.held.get(key) is held:
            del self.held[key]
        topic = self._topics.alert_state
        await self._put(topic, key.encode(), None)
        legacy = self._legacy_keys.pop(key, None)
        if legacy is not None:
            await self._put(topic, legacy, None)
        marker = {"shard": held.shard, "offset": self.applied.get(held.shard, -1)}
        await self._put(topic, _OFFSET_KEY + str(held.shard).encode(), orjson.dumps(marker))

    async def save_silence(self, silence: Silence) -> None:
        """Persist a silence created or changed through the API, then apply it here."""
        body = orjson.dumps(silence.model_dump(mode="json", by_alias=True))
        silence_id = silence.stable_id()
        await self._put(self._topics.silences, silence_id.encode(), body)
        self.silences.apply(silence_id, silence)
        _log.info("silence_saved", id=silence_id, matchers=[str(m) for m in silence.matchers])

    async def _put_log(self, key: str, entry: LogEntry | None) -> None:
        value = orjson.dumps(entry.to_json()) if entry is not None else None
        await self._put(self._topics.notify_log, key.encode(), value)

    async def _put(self, topic: str, key: bytes, value: bytes | None) -> None:
        if self._store is None:
            raise RuntimeError("the delivery state is not bound to its topics yet")
        await self._store.put(topic, key, value)

    def latest(self, fingerprint: str) -> Held | None:
        """The latest episode of an alert held in groups, if any."""
        held = [h for h in self.held.values() if h.alert.fingerprint == fingerprint]
        return max(held, key=lambda h: h.alert.starts_at, default=None)

    def note_applied(self, shard: int, offset: int) -> None:
        self.applied[shard] = max(self.applied.get(shard, -1), offset)

    # -- in -----------------------------------------------------------------------------------

    def _read_held(self, key: bytes, value: bytes | None) -> None:
        if value is None:
            self.held.pop(key.decode(errors="replace"), None)
        elif key.startswith(_OFFSET_KEY):
            marker = _decoded(key, value, lambda body: (int(body["shard"]), int(body["offset"])))
            if marker is not None:
                self.note_applied(*marker)
        else:
            read = _decoded(key, value, _held_from_json)
            if read is not None:
                held, offset = read
                episode = episode_key(held.alert)
                self.held[episode] = held
                if key != episode.encode():
                    self._legacy_keys[episode] = key
                self.note_applied(held.shard, offset)

    def _read_log(self, key: bytes, value: bytes | None) -> None:
        name = _text_key(key)
        if name is None:
            return
        if value is None:
            self.nflog.apply(name, None)
            return
        entry = _decoded(key, value, LogEntry.from_json)
        if entry is not None:
            self.nflog.apply(name, entry)

    def _read_silence(self, key: bytes, value: bytes | None) -> None:
        silence_id = _text_key(key)
        if silence_id is None:
            return
        if value is None:
            self.silences.apply(silence_id, None)
            return
        silence = _decoded(key, value, lambda body: topic_silence(silence_id, body))
        if silence is None:
            return
        ended = silence.ends_at
        long_over = ended is not None and self._clock.now() - ended > SILENCE_RETENTION_S
        self.silences.apply(silence_id, None if long_over else silence)


def topic_silence(silence_id: str, body: Mapping[str, Any]) -> Silence:
    """A silence read from the silences topic, as strictly as the API reads one: the API
    writes its id in the body and as the key, and never a silence without an end.
    Raises ValueError (pydantic's ValidationError is one) saying what is wrong."""
    silence = Silence.model_validate(body)
    if silence.id != silence_id:
        raise ValueError(f"the silence's id {silence.id!r} is not its key")
    if silence.ends_at is None:
        raise ValueError("a silence from the topic needs an end, as one from the API does")
    return silence


def _text_key(key: bytes) -> str | None:
    try:
        return key.decode()
    except UnicodeDecodeError:
        _log.error("state_record_invalid", key=key.decode(errors="replace"), detail="not UTF-8")
        return None


def _decoded(key: bytes, value: bytes, read: Callable[[Mapping[str, Any]], T]) -> T | None:
    try:
        body = orjson.loads(value)
        if not isinstance(body, dict):
            raise TypeError("not a JSON object")
        return read(body)
    # ValidationError is a ValueError; AttributeError: a list or a number where an object
    # was due (`.get` on it).
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        _log.error("state_record_invalid", key=key.decode(errors="replace"), detail=str(error))
        return None


def _held_from_json(body: Mapping[str, Any]) -> tuple[Held, int]:
    held = Held(Alert.from_json(body["alert"]), int(body["shard"]), float(body["receivedAt"]))
    return held, int(body["offset"])
