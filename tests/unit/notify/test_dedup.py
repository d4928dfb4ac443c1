"""Dedup decisions (Alertmanager's needsUpdate, plus "if we notified, we resolve"), what a
notification carries, and the notification id that receivers use as an idempotency key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anomalyd.alert import firing, resolved
from anomalyd.domain import Alert
from anomalyd.notify.dedup import Reason, alert_state, needs_update, notification_id, plan, split
from anomalyd.notify.group import episode_key
from anomalyd.notify.nflog import LogEntry, NotificationLog
from anomalyd.notify.stage import FlushContext

T0 = 1_700_000_000.0
REPEAT = 3600.0


def entry(firing: set[str], resolved: set[str] = frozenset(), at: float = T0) -> LogEntry:  # type: ignore[assignment]
    return LogEntry("team", "{}:{}", frozenset(firing), frozenset(resolved), at)


@pytest.mark.parametrize(
    ("log", "firing", "resolved", "now", "expected"),
    [
        # never notified
        (None, {"a"}, set(), T0, Reason.FIRST),
        (None, set(), {"a"}, T0, None),  # only resolved alerts: nothing to tell
        (None, set(), set(), T0, None),
        # after a resolution the group starts over
        (entry(set(), {"a"}), {"b"}, set(), T0, Reason.FIRST),
        # new alerts in a group already notified
        (entry({"a"}), {"a", "b"}, set(), T0 + 1, Reason.NEW_ALERTS),
        # nothing changed
        (entry({"a"}), {"a"}, set(), T0 + 1, None),
        (entry({"a", "b"}), {"a"}, set(), T0 + 1, None),  # b muted: still nothing to say
        # the repeat interval
        (entry({"a"}), {"a"}, set(), T0 + REPEAT - 1, None),
        (entry({"a"}), {"a"}, set(), T0 + REPEAT, Reason.REPEAT),
        (entry({"a"}, {"z"}), set(), set(), T0 + REPEAT, None),  # nothing firing: no repeat
        # if we notified, we resolve
        (entry({"a", "b"}), {"b"}, {"a"}, T0 + 1, Reason.SOME_RESOLVED),
        (entry({"a"}), set(), {"a"}, T0 + 1, Reason.ALL_RESOLVED),
        # a resolution nobody heard of the firing of is not news
        (entry({"a"}), {"a"}, {"x"}, T0 + 1, None),
        (entry(set(), {"a"}), set(), {"a"}, T0 + 1, None),  # resolution already sent
    ],
)
def test_needs_update(
    log: LogEntry | None, firing: set[str], resolved: set[str], now: float, expected: Reason | None
) -> None:
    assert needs_update(log, frozenset(firing), frozenset(resolved), REPEAT, now) == expected


def alert(name: str) -> Alert:
    return firing({"alertname": name}, {}, T0, "http://x")


A, B, C = alert("a"), alert("b"), alert("c")


def ctx(now: float = T0 + 10) -> FlushContext:
    return FlushContext(now, "team", "{}:{}", {}, REPEAT)


def test_plan_sends_unmuted_firing_and_resolutions_of_what_was_notified() -> None:
    log = entry({episode_key(A), episode_key(B)})
    alerts = [resolved(A, T0 + 5), B, C, resolved(alert("never-told"), T0 + 5)]
    chosen = plan(ctx(), log, alerts, muted={B.fingerprint})
    assert [a.fingerprint for a in chosen.alerts] == [A.fingerprint, C.fingerprint]
    # B is muted and still firing: the receiver still believes it fires, so it stays
    assert chosen.entry.firing == {episode_key(B), episode_key(C)}
    assert chosen.entry.resolved == {episode_key(A)}
    assert chosen.entry.timestamp == T0 + 10
    # Named by the alert states it carries (not a reminder: no `after`).
    assert chosen.notification_id == notification_id(
        "team", "{}:{}", [alert_state(C)], [alert_state(resolved(A, T0 + 5))]
    )


def test_a_resolution_is_sent_even_when_the_alert_is_muted() -> None:
    log = entry({episode_key(A)})
    chosen = plan(ctx(), log, [resolved(A, T0 + 5)], muted={A.fingerprint})
    assert [a.status.value for a in chosen.alerts] == ["resolved"]
    assert chosen.entry.firing == frozenset()


def test_a_reminder_is_a_new_message_but_a_redo_is_not() -> None:
    first_sent = entry({episode_key(A)})
    reminder = plan(ctx(), first_sent, [A], muted=set(), reminder=True)
    # The same decision made again (a retry, or after a crash before it was recorded)...
    again = plan(ctx(), first_sent, [A], muted=set(), reminder=True)
    assert again.notification_id == reminder.notification_id
    # ...but the next reminder, after this one was recorded, is a new message.
    next_reminder = plan(ctx(), reminder.entry, [A], muted=set(), reminder=True)
    assert next_reminder.notification_id != reminder.notification_id
    assert reminder.notification_id != plan(ctx(), None, [A], muted=set()).notification_id


def test_a_replayed_decision_keeps_its_id_whatever_the_log_holds() -> None:
    """After a crash the worker replays events from its last commit and decides the same
    alert states again, while the log may hold a later entry (or none): the same states
    are the same notification."""
    fired = plan(ctx(), None, [A], muted=set())
    assert plan(ctx(T0 + 99), entry(set()), [A], muted=set()).notification_id == (
        fired.notification_id
    )
    ended = resolved(A, T0 + 5)
    first = plan(ctx(), fired.entry, [ended], muted=set())
    replayed = plan(ctx(T0 + 99), entry({episode_key(A)}), [ended], muted=set())
    assert replayed.notification_id == first.notification_id != fired.notification_id


def test_notification_id_is_deterministic_and_content_addressed() -> None:
    one = notification_id("team", "{}:{}", ["b", "a"], ["c"])
    assert one == notification_id("team", "{}:{}", ["a", "b", "a"], ["c"])
    assert len(one) == 32
    assert all(c in "0123456789abcdef" for c in one)
    assert one != notification_id("other", "{}:{}", ["a", "b"], ["c"])
    assert one != notification_id("team", "{}/{}:{}", ["a", "b"], ["c"])
    assert one != notification_id("team", "{}:{}", ["a", "b", "c"], [])
    assert one != notification_id("team", "{}:{}", ["a"], ["b", "c"])


fps = st.sets(st.text(alphabet="0123456789abcdef", min_size=1, max_size=4), max_size=5)


@given(fps, fps, fps, fps)
def test_ids_differ_when_the_content_differs(
    f1: set[str], r1: set[str], f2: set[str], r2: set[str]
) -> None:
    same = (f1, r1) == (f2, r2)
    assert (notification_id("t", "g", f1, r1) == notification_id("t", "g", f2, r2)) is same


async def test_the_log_persists_before_it_counts_and_skips_stale_forgets() -> None:
    written: list[tuple[str, LogEntry | None]] = []

    async def persist(key: str, value: LogEntry | None) -> None:
        written.append((key, value))

    log = NotificationLog(persist)
    first = entry({"a"})
    await log.record(first)
    assert log.get("team", "{}:{}") == first
    assert written == [("team:{}:{}", first)]
    await log.forget("team", "{}:{}")
    assert log.get("team", "{}:{}") is None
    assert written[-1] == ("team:{}:{}", None)
    await log.forget("team", "{}:{}")  # nothing to forget: nothing written
    assert len(written) == 2
    assert LogEntry.from_json(first.to_json()) == first


async def test_a_failed_write_does_not_count() -> None:
    async def broken(key: str, value: LogEntry | None) -> None:
        raise OSError("broker down")

    log = NotificationLog(broken)
    with pytest.raises(OSError, match="broker down"):
        await log.record(entry({"a"}))
    assert log.get("team", "{}:{}") is None


def test_a_new_episode_is_news_and_takes_the_place_of_the_one_told() -> None:
    """The receiver was told of an earlier episode of A: a later one is new, and once sent
    it is the one the receiver believes fires."""
    later = firing(A.labels, {}, T0 + 60, "http://x")
    log = entry({episode_key(A)})
    firing_now, resolved_now = split([later], set())
    assert needs_update(log, firing_now, resolved_now, REPEAT, T0 + 61) is Reason.NEW_ALERTS
    assert plan(ctx(), log, [later], muted=set()).entry.firing == {episode_key(later)}
