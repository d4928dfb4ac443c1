"""The notify pipeline end to end without I/O: routing into groups, group_wait /
group_interval / repeat_interval on a manual clock, silences and inhibition at flush
time, "if we notified, we resolve", and a restart in the middle of a group rebuilt from
the persisted state without a second page."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from anomalyd.alert import firing, resolved
from anomalyd.clock import ManualClock
from anomalyd.config.routing import InhibitRule, Route, Silence
from anomalyd.domain import Alert
from anomalyd.metrics import Metrics
from anomalyd.notify import DeadLetter, DeliveryError, Notification, RetryPolicy
from anomalyd.notify.builder import build_pipeline
from anomalyd.notify.dispatch import Dispatcher
from anomalyd.notify.group import Held, episode_key
from anomalyd.notify.inhibit import Inhibitor
from anomalyd.notify.nflog import LogEntry, NotificationLog
from anomalyd.notify.retry import RetryStage
from anomalyd.notify.route import build_tree
from anomalyd.notify.silence import Silences
from anomalyd.notify.stage import Stage

T0 = 1_700_000_000.0
URL = "http://anomalyd.test"


class Recorder:
    """A receiver that records what it is sent; fails as scripted."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[Notification] = []
        self.failures: list[DeliveryError] = []

    async def send(self, notification: Notification) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(notification)


@dataclass
class Persisted:
    """What survives a restart: the nflog topic and the held-alerts topic."""

    log: dict[str, LogEntry] = field(default_factory=dict)
    held: dict[str, Held] = field(default_factory=dict)
    fail_log_writes: bool = False


class Rig:
    def __init__(
        self,
        route: dict[str, Any],
        receivers: tuple[str, ...] = ("team",),
        *,
        inhibit: tuple[dict[str, Any], ...] = (),
        silences: tuple[dict[str, Any], ...] = (),
        persisted: Persisted | None = None,
        clock: ManualClock | None = None,
    ) -> None:
        self.clock = clock or ManualClock(T0)
        self.persisted = persisted or Persisted()
        self.metrics = Metrics()
        self.dead: list[DeadLetter] = []
        self.receivers = {name: Recorder(name) for name in receivers}
        self.log = NotificationLog(self._persist)
        for key, entry in self.persisted.log.items():
            self.log.apply(key, entry)
        self.silences = Silences([Silence.model_validate(s) for s in silences])
        rules = [InhibitRule.model_validate(rule) for rule in inhibit]
        inhibitor = Inhibitor(rules, lambda: self.dispatcher.alerts())
        pipeline = build_pipeline(
            inhibitor, self.silences, self.log, self._retry, self.receivers, self.metrics
        )
        self.dispatcher = Dispatcher(
            build_tree(Route.model_validate(route)),
            pipeline,
            self.log,
            self.metrics,
            on_forget=self._forget,
        )

    def _retry(self, deliver: Stage) -> RetryStage:
        async def no_wait(seconds: float) -> None:
            self.clock.advance(0)

        async def dead_letter(letter: DeadLetter) -> None:
            self.dead.append(letter)

        policy = RetryPolicy(max_attempts=2, initial_backoff=0.1, max_backoff=0.1)
        return RetryStage(
            deliver,
            policy,
            self.clock,
            dead_letter,
            self.metrics,
            sleep=no_wait,
            rng=random.Random(1),
        )

    async def _persist(self, key: str, entry: LogEntry | None) -> None:
        if self.persisted.fail_log_writes:
            raise OSError("broker unreachable")
        if entry is None:
            self.persisted.log.pop(key, None)
        else:
            self.persisted.log[key] = entry

    async def _forget(self, held: Held) -> None:
        self.persisted.held.pop(episode_key(held.alert), None)

    def insert(self, *alerts: Alert, shard: int = 0) -> None:
        for alert in alerts:
            held = self.dispatcher.insert(alert, shard, self.clock.now())
            if held is not None:
                self.persisted.held[episode_key(alert)] = held

    async def at(self, seconds: float) -> None:
        """Move the clock to T0 + seconds and flush what is due then."""
        self.clock.set(T0 + seconds)
        await self.dispatcher.flush_due(self.clock.now())

    def restarted(self, **kwargs: Any) -> Rig:
        """A new process: nothing in memory but what was persisted."""
        rig = Rig(persisted=self.persisted, clock=self.clock, **kwargs)
        rig.dispatcher.restore(list(self.persisted.held.values()), self.clock.now())
        return rig

    def reconfigure(self, route: dict[str, Any], receivers: tuple[str, ...] = ("team",)) -> None:
        """A config reload: a new tree and pipeline; receivers keep what they were sent."""
        for name in receivers:
            self.receivers.setdefault(name, Recorder(name))
        notifiers = {name: self.receivers[name] for name in receivers}
        inhibitor = Inhibitor([], lambda: self.dispatcher.alerts())
        pipeline = build_pipeline(inhibitor, self.silences, self.log, self._retry, notifiers)
        tree = build_tree(Route.model_validate(route))
        self.dispatcher.reconfigure(tree, pipeline, self.clock.now())

    def sent(self, receiver: str = "team") -> list[list[tuple[str, str]]]:
        """Each notification as [(alertname, status)]."""
        return [
            [(a.labels["alertname"], a.status.value) for a in n.alerts]
            for n in self.receivers[receiver].sent
        ]

    def episodes(self, receiver: str = "team") -> list[list[tuple[str, float, str]]]:
        """Each notification as [(alertname, start, status)]."""
        return [
            [(a.labels["alertname"], a.starts_at - T0, a.status.value) for a in n.alerts]
            for n in self.receivers[receiver].sent
        ]

    def gauge(self, name: str, receiver: str = "team") -> float:
        return self.metrics.registry.get_sample_value(name, {"receiver": receiver}) or 0.0


def alert(name: str, **labels: str) -> Alert:
    return firing({"alertname": name, **labels}, {"summary": name}, T0, URL)


GROUPED = {
    "receiver": "team",
    "group_by": ["stream"],
    "group_wait": "30s",
    "group_interval": "5m",
    "repeat_interval": "4h",
}
QUICK_WAIT = {**GROUPED, "group_interval": "1m"}


# --- grouping -----------------------------------------------------------------------------------


async def test_group_wait_collects_the_alerts_that_arrive_together_into_one_notification() -> None:
    rig = Rig(GROUPED)
    rig.insert(alert("A", stream="s"))
    await rig.at(10)
    rig.insert(alert("B", stream="s"), alert("C", stream="s"))
    await rig.at(29.9)
    assert rig.sent() == []  # still waiting
    assert rig.gauge("anomalyd_notify_queued_alerts") == 3
    await rig.at(30)
    assert rig.sent() == [[("A", "firing"), ("B", "firing"), ("C", "firing")]]
    [notification] = rig.receivers["team"].sent
    assert notification.group_key == '{}:{stream="s"}'
    assert notification.group_labels == {"stream": "s"}
    assert len(notification.notification_id) == 32


async def test_groups_are_apart_by_their_labels() -> None:
    rig = Rig(GROUPED)
    rig.insert(alert("A", stream="s1"), alert("B", stream="s2"))
    await rig.at(30)
    assert sorted(rig.sent()) == [[("A", "firing")], [("B", "firing")]]
    assert rig.gauge("anomalyd_notify_groups") == 2


async def test_group_interval_paces_updates_and_nothing_is_resent_unchanged() -> None:
    rig = Rig(GROUPED)
    rig.insert(alert("A", stream="s"))
    await rig.at(30)
    rig.insert(alert("B", stream="s"))
    await rig.at(31)
    await rig.at(329.9)
    assert len(rig.sent()) == 1  # B waits for the group interval
    await rig.at(330)
    assert rig.sent()[1] == [("A", "firing"), ("B", "firing")]
    await rig.at(630)
    await rig.at(930)
    assert len(rig.sent()) == 2  # unchanged: nothing new to say


async def test_repeat_interval_reminds_of_what_still_fires() -> None:
    rig = Rig({**GROUPED, "repeat_interval": "1h"})
    rig.insert(alert("A", stream="s"))
    await rig.at(30)
    for minutes in range(5, 60, 5):
        await rig.at(30 + minutes * 60 - 1)
    assert len(rig.sent()) == 1
    await rig.at(30 + 3600)
    assert rig.sent() == [[("A", "firing")], [("A", "firing")]]
    count = rig.metrics.registry.get_sample_value(
        "anomalyd_notifications_total", {"receiver": "team", "reason": "repeat_interval"}
    )
    assert count == 1


async def test_resolution_is_sent_then_the_group_and_its_state_are_gone() -> None:
    rig = Rig(GROUPED)
    a = alert("A", stream="s")
    rig.insert(a)
    await rig.at(30)
    rig.insert(resolved(a, T0 + 40))
    await rig.at(330)
    assert rig.sent() == [[("A", "firing")], [("A", "resolved")]]
    assert rig.dispatcher.groups() == []
    assert rig.persisted.held == {}  # forgotten by the held-alerts topic
    assert rig.gauge("anomalyd_notify_queued_alerts") == 0
    assert rig.gauge("anomalyd_notify_groups") == 0
    # The log entry outlives the group, until it has been idle long enough.
    [entry] = rig.persisted.log.values()
    assert (entry.firing, entry.resolved) == (frozenset(), {episode_key(a)})
    assert await rig.dispatcher.expire_log(T0 + 330) == 0
    assert await rig.dispatcher.expire_log(T0 + 331) == 1
    assert rig.persisted.log == {}


async def test_a_replay_after_a_crash_of_what_was_resolved_is_no_news() -> None:
    """A SIGKILL makes the worker decide again what it decided since its last commit: the
    episodes it notified and resolved come back, firing then resolved, after their group
    closed. The log entry the group left says they were told."""
    rig = Rig(QUICK)
    a = alert("A", stream="s")
    later = firing(a.labels, a.annotations, T0 + 20, URL)
    for t, state in enumerate([a, resolved(a, T0 + 5), later, resolved(later, T0 + 25)]):
        rig.insert(state)
        await rig.at(60 * t)
    assert len(rig.sent()) == 4
    after = rig.restarted(route=QUICK)
    for t, state in enumerate([a, resolved(a, T0 + 5), later, resolved(later, T0 + 25)], 4):
        after.insert(state)
        await after.at(60 * t)
    assert after.sent() == []
    assert after.dispatcher.groups() == []


async def test_only_idle_entries_of_closed_groups_expire() -> None:
    rig = Rig(QUICK)
    a, b = alert("A", stream="s"), alert("B", stream="t")
    rig.insert(a, b)
    await rig.at(0)
    rig.insert(resolved(a, T0 + 5))
    await rig.at(60)
    assert len(rig.persisted.log) == 2
    assert await rig.dispatcher.expire_log(T0 + 3600) == 1  # b's group: still firing
    assert [e.group_key for e in rig.persisted.log.values()] == ['{}:{stream="t"}']


async def test_an_alert_fired_and_resolved_within_group_wait_is_sent_firing_then_resolved() -> None:
    """Alertmanager drops a resolved alert nobody was told fired; a page missed is an
    incident missed, so here it fires first and resolves at the next flush."""
    rig = Rig(GROUPED)
    a = alert("A", stream="s")
    rig.insert(a)
    rig.insert(resolved(a, T0 + 5))
    await rig.at(30)
    assert rig.sent() == [[("A", "firing")]]
    [fired] = rig.receivers["team"].sent
    assert fired.alerts[0].ends_at is None
    await rig.at(329)
    await rig.at(330)
    assert rig.sent() == [[("A", "firing")], [("A", "resolved")]]
    assert rig.dispatcher.groups() == []
    assert rig.persisted.held == {}
    # The firing notification is the one the firing state alone would have made: a receiver
    # that got it before a crash drops the redo.
    alone = Rig(GROUPED)
    alone.insert(a)
    await alone.at(30)
    assert alone.receivers["team"].sent[0].notification_id == fired.notification_id


async def test_episodes_that_fired_and_resolved_before_a_flush_are_each_notified() -> None:
    """Two episodes of one alert (each fired and resolved) held before the first flush:
    each is notified firing, then resolved, in order; none merges into the other."""
    rig = Rig(QUICK_WAIT)
    a = alert("A", stream="s")
    second = firing(a.labels, a.annotations, T0 + 20, URL)
    rig.insert(a, resolved(a, T0 + 5), second, resolved(second, T0 + 25))
    for t in (30, 90, 150, 210, 270):
        await rig.at(t)
    assert rig.episodes() == [
        [("A", 0, "firing")],
        [("A", 0, "resolved")],
        [("A", 20, "firing")],
        [("A", 20, "resolved")],
    ]
    ids = [n.notification_id for n in rig.receivers["team"].sent]
    assert len(set(ids)) == 4
    assert rig.dispatcher.groups() == []
    assert rig.persisted.held == {}


async def test_a_new_episode_waits_for_the_resolution_of_the_one_notified() -> None:
    rig = Rig(QUICK_WAIT)
    a, b = alert("A", stream="s"), alert("B", stream="s")
    rig.insert(a, b)
    await rig.at(30)
    again = firing(a.labels, a.annotations, T0 + 40, URL)
    rig.insert(resolved(a, T0 + 35), again)  # both before the next flush
    await rig.at(90)
    await rig.at(150)
    await rig.at(210)
    assert rig.episodes() == [
        [("A", 0, "firing"), ("B", 0, "firing")],
        [("A", 0, "resolved"), ("B", 0, "firing")],
        [("B", 0, "firing"), ("A", 40, "firing")],
    ]


async def test_episodes_held_before_a_restart_are_each_notified_after_it() -> None:
    rig = Rig(QUICK_WAIT)
    a = alert("A", stream="s")
    rig.insert(a)
    await rig.at(30)  # the first episode is paged ...
    second = firing(a.labels, a.annotations, T0 + 40, URL)
    rig.insert(resolved(a, T0 + 35), second, resolved(second, T0 + 45))
    after = rig.restarted(route=QUICK_WAIT)  # ... then the rest is read, and the worker dies
    for t in (90, 150, 210, 270):
        await after.at(t)
    assert after.episodes() == [
        [("A", 0, "resolved")],
        [("A", 40, "firing")],
        [("A", 40, "resolved")],
    ]
    assert after.persisted.held == {}


async def test_a_muted_episode_is_finished_by_the_flush_that_muted_it() -> None:
    rig = Rig(QUICK, silences=({"id": "s", "matchers": ['alertname="A"'], "endsAt": T0 + 90},))
    a = alert("A", stream="s")
    rig.insert(a, resolved(a, T0 + 5))
    await rig.at(0)
    assert rig.sent() == []
    assert rig.dispatcher.groups() == []  # nothing left to say of it, ever
    await rig.at(120)
    assert rig.sent() == []


async def test_a_stale_state_never_replaces_a_newer_one() -> None:
    rig = Rig(GROUPED)
    a = alert("A", stream="s")
    rig.insert(resolved(a, T0 + 5))
    assert rig.dispatcher.insert(a, 0, T0) is None  # the firing state, replayed late
    assert [x.status.value for x in rig.dispatcher.alerts()] == ["resolved"]
    again = firing(a.labels, {}, T0 + 60, URL)  # a new episode of the same alert
    assert rig.dispatcher.insert(again, 0, T0 + 60) is not None
    assert rig.dispatcher.insert(resolved(a, T0 + 5), 0, T0 + 61) is None  # an older episode


# --- routing ------------------------------------------------------------------------------------

TREE = {
    "receiver": "tickets",
    "group_by": ["alertname"],
    "group_wait": "0s",
    "group_interval": "1m",
    "routes": [
        {"receiver": "audit", "matchers": ['region="eu"'], "continue": True},
        {"receiver": "pager", "matchers": ['severity="critical"']},
    ],
}


async def test_the_routing_tree_sends_each_alert_where_it_belongs() -> None:
    rig = Rig(TREE, ("pager", "tickets", "audit"))
    rig.insert(alert("Down", severity="critical", region="eu"))  # audit, then on to pager
    rig.insert(alert("Slow", severity="warning"))  # no child matches: the root's receiver
    rig.insert(alert("Odd", severity="warning", region="eu"))  # audit took it: not the root
    await rig.at(0)
    assert rig.sent("pager") == [[("Down", "firing")]]
    assert rig.sent("tickets") == [[("Slow", "firing")]]
    assert sorted(rig.sent("audit")) == [[("Down", "firing")], [("Odd", "firing")]]
    [page] = rig.receivers["pager"].sent
    assert page.group_key == '{}/{severity="critical"}:{alertname="Down"}'


# --- silences, inhibition, and "if we notified, we resolve" -------------------------------------

QUICK = {**GROUPED, "group_wait": "0s", "group_interval": "1m"}
SILENCE_A = {"id": "s1", "matchers": ['alertname="A"'], "startsAt": T0 + 100}


async def test_a_silenced_alert_is_not_sent_nor_is_its_resolution() -> None:
    rig = Rig(QUICK, silences=({"id": "s", "matchers": ['alertname="A"']},))
    a = alert("A", stream="s")
    rig.insert(a, alert("B", stream="s"))
    await rig.at(0)
    assert rig.sent() == [[("B", "firing")]]
    rig.insert(resolved(a, T0 + 30))
    await rig.at(60)
    assert rig.sent() == [[("B", "firing")]]


async def test_if_we_notified_we_resolve_even_when_silenced_since() -> None:
    rig = Rig(QUICK, silences=(SILENCE_A,))
    a = alert("A", stream="s")
    rig.insert(a)
    await rig.at(0)
    assert rig.sent() == [[("A", "firing")]]
    await rig.at(120)  # silenced now, still firing: nothing to say
    rig.insert(resolved(a, T0 + 130))
    await rig.at(180)
    assert rig.sent() == [[("A", "firing")], [("A", "resolved")]]


async def test_if_we_notified_we_resolve_even_when_inhibited_since() -> None:
    rule = {
        "source_matchers": ['alertname="Silent"'],
        "target_matchers": ['alertname="A"'],
        "equal": ["stream"],
    }
    rig = Rig({**QUICK, "group_by": ["alertname"]}, inhibit=(rule,))
    a = alert("A", stream="s")
    rig.insert(a)
    await rig.at(0)
    rig.insert(alert("Silent", stream="s"))
    await rig.at(60)
    rig.insert(alert("A", stream="t"))  # another stream: not inhibited
    rig.insert(resolved(a, T0 + 70))
    await rig.at(120)
    _, second, third = rig.receivers["team"].sent
    assert [(a.labels["alertname"], a.status.value) for a in second.alerts] == [
        ("Silent", "firing")
    ]
    assert sorted((a.labels["stream"], a.status.value) for a in third.alerts) == [
        ("s", "resolved"),  # inhibited by then, but it was notified: its resolution goes out
        ("t", "firing"),
    ]


async def test_muted_alerts_are_counted_by_reason_at_each_flush() -> None:
    rule = {
        "source_matchers": ['alertname="Silent"'],
        "target_matchers": ['alertname="B"'],
        "equal": ["stream"],
    }
    silence = {"id": "s", "matchers": ['alertname="A"']}
    rig = Rig(QUICK, silences=(silence,), inhibit=(rule,))

    def muted(reason: str) -> float | None:
        return rig.metrics.registry.get_sample_value(
            "anomalyd_notifications_muted_total", {"reason": reason}
        )

    assert (muted("silenced"), muted("inhibited")) == (0.0, 0.0)  # exported before any
    rig.insert(alert("A", stream="s"), alert("B", stream="s"), alert("Silent", stream="s"))
    await rig.at(0)
    assert rig.sent() == [[("Silent", "firing")]]
    assert (muted("silenced"), muted("inhibited")) == (1.0, 1.0)
    rig.insert(alert("A", stream="t"))
    await rig.at(60)
    assert (muted("silenced"), muted("inhibited")) == (3.0, 2.0)  # the group's flush again


async def test_an_alert_muted_while_firing_is_notified_when_the_silence_ends() -> None:
    rig = Rig(QUICK, silences=({"id": "s", "matchers": ['alertname="A"'], "endsAt": T0 + 90},))
    rig.insert(alert("A", stream="s"))
    await rig.at(0)
    await rig.at(60)
    assert rig.sent() == []
    await rig.at(120)
    assert rig.sent() == [[("A", "firing")]]


async def test_a_silence_added_at_runtime_applies_at_the_next_flush() -> None:
    rig = Rig(GROUPED)
    rig.insert(alert("A", stream="s"))
    rig.silences.apply("new", Silence.model_validate({"id": "new", "matchers": ['stream="s"']}))
    await rig.at(30)
    assert rig.sent() == []


# --- delivery failures --------------------------------------------------------------------------


async def test_a_dead_lettered_notification_counts_as_handled() -> None:
    rig = Rig(QUICK)
    rig.receivers["team"].failures = [DeliveryError("http_410", "gone", retryable=False)]
    rig.insert(alert("A", stream="s"))
    await rig.at(0)
    [letter] = rig.dead
    assert letter.group_key == '{}:{stream="s"}'
    assert len(letter.notification_id) == 32
    await rig.at(60)
    assert rig.sent() == []  # not sent again: it is in the dead-letter topic


async def test_when_state_cannot_be_persisted_the_group_tries_again_next_interval() -> None:
    rig = Rig(QUICK)
    a = alert("A", stream="s")
    rig.persisted.fail_log_writes = True
    rig.insert(a)
    await rig.at(0)  # delivered, but the log write failed
    rig.persisted.fail_log_writes = False
    await rig.at(60)  # so it is sent again, under the same id
    first, second = rig.receivers["team"].sent
    assert first.notification_id == second.notification_id
    await rig.at(120)
    assert len(rig.sent()) == 2


# --- restarts -----------------------------------------------------------------------------------


async def test_a_restart_in_the_middle_of_a_group_does_not_page_again() -> None:
    rig = Rig(GROUPED)
    rig.insert(alert("A", stream="s"))
    await rig.at(30)
    rig.insert(alert("B", stream="s"))  # waits for the group interval ...
    await rig.at(100)
    after = rig.restarted(route=GROUPED)  # ... when the process dies
    await after.at(101)
    await after.at(329)
    assert after.sent() == []  # A is not paged again; B waits for the interval as before
    await after.at(330)
    assert after.sent() == [[("A", "firing"), ("B", "firing")]]
    assert after.metrics.registry.get_sample_value(
        "anomalyd_notifications_total", {"receiver": "team", "reason": "new_alerts"}
    )


async def test_a_restart_after_a_notification_stays_quiet_until_something_changes() -> None:
    rig = Rig(GROUPED)
    rig.insert(alert("A", stream="s"))
    await rig.at(30)
    after = rig.restarted(route=GROUPED)
    for t in (31, 400, 700, 3000):
        await after.at(t)
    assert after.sent() == []
    await after.at(30 + 4 * 3600)
    assert after.sent() == [[("A", "firing")]]  # the repeat, on schedule


async def test_a_restart_does_not_forget_to_resolve() -> None:
    rig = Rig(GROUPED)
    a = alert("A", stream="s")
    rig.insert(a)
    await rig.at(30)
    rig.insert(resolved(a, T0 + 40))  # read, not yet flushed ...
    after = rig.restarted(route=GROUPED)  # ... when the process dies
    await after.at(329)
    assert after.sent() == []
    await after.at(330)
    assert after.sent() == [[("A", "resolved")]]


async def test_a_restart_during_group_wait_keeps_the_wait() -> None:
    rig = Rig(GROUPED)
    rig.insert(alert("A", stream="s"))
    await rig.at(10)
    after = rig.restarted(route=GROUPED)
    await after.at(29)
    assert after.sent() == []
    await after.at(30)
    assert after.sent() == [[("A", "firing")]]


async def test_dropping_a_shard_lets_go_of_its_alerts_only() -> None:
    rig = Rig(GROUPED)
    rig.insert(alert("A", stream="s"), shard=0)
    rig.insert(alert("B", stream="s"), shard=1)
    rig.dispatcher.drop_shards({1})
    await rig.at(30)
    assert rig.sent() == [[("A", "firing")]]
    assert rig.gauge("anomalyd_notify_queued_alerts") == 1
    rig.dispatcher.drop_shards({0})
    assert rig.dispatcher.groups() == []
    assert rig.persisted.held.keys() == {
        episode_key(alert("A", stream="s")),
        episode_key(alert("B", stream="s")),
    }


# --- a config reload ------------------------------------------------------------------------------


async def test_a_reload_keeps_a_waiting_group_its_alerts_and_its_timer() -> None:
    rig = Rig(GROUPED)
    rig.insert(alert("A", stream="s"))
    await rig.at(10)
    [group] = rig.dispatcher.groups()
    rig.reconfigure({**GROUPED, "group_interval": "1m"})
    assert rig.dispatcher.groups() == [group]
    await rig.at(29)
    assert rig.sent() == []
    await rig.at(30)  # group_wait as it was planned, not started again
    assert rig.sent() == [[("A", "firing")]]
    rig.insert(alert("B", stream="s"))
    await rig.at(90)  # the new group_interval
    assert rig.sent()[1] == [("A", "firing"), ("B", "firing")]


async def test_a_reload_that_routes_elsewhere_moves_the_alerts_without_losing_them() -> None:
    rig = Rig(GROUPED)
    rig.insert(alert("A", stream="s"))
    await rig.at(30)
    assert rig.sent() == [[("A", "firing")]]
    rig.reconfigure({**GROUPED, "receiver": "ops"}, receivers=("ops",))
    await rig.at(31)  # held longer than group_wait already: flushed at once
    assert rig.sent("ops") == [[("A", "firing")]]
    rig.insert(resolved(alert("A", stream="s"), T0 + 40))
    await rig.at(91)
    await rig.at(331)
    assert rig.sent("ops")[-1] == [("A", "resolved")]
    assert rig.sent() == [[("A", "firing")]]  # team is no longer routed to
    assert rig.gauge("anomalyd_notify_queued_alerts") == 0
    assert rig.gauge("anomalyd_notify_groups") == 0
    assert rig.gauge("anomalyd_notify_groups", "ops") == 0


async def test_a_reload_regroups_by_the_new_group_by() -> None:
    rig = Rig(GROUPED)
    rig.insert(alert("A", stream="s1"), alert("B", stream="s2"))
    await rig.at(30)
    assert len(rig.sent()) == 2
    rig.reconfigure({**GROUPED, "group_by": ["..."], "group_wait": "0s"})
    assert len(rig.dispatcher.groups()) == 2
    assert {tuple(g.labels) for g in rig.dispatcher.groups()} == {("alertname", "stream")}
    assert rig.gauge("anomalyd_notify_queued_alerts") == 2
    assert rig.gauge("anomalyd_notify_groups") == 2


async def test_a_flush_under_way_during_a_reload_ends_on_the_old_pipeline() -> None:
    rig = Rig(GROUPED)
    rig.insert(alert("A", stream="s"))
    rig.clock.set(T0 + 30)
    [pending] = rig.dispatcher.take_due(rig.clock.now())
    rig.reconfigure({**GROUPED, "receiver": "ops"}, receivers=("ops",))
    await rig.dispatcher.flush(pending)
    assert rig.sent() == [[("A", "firing")]]  # the flush that had begun
    await rig.at(31)
    assert rig.sent("ops") == [[("A", "firing")]]  # and the alert is held on the new route
    assert rig.gauge("anomalyd_notify_queued_alerts") == 0
    assert rig.gauge("anomalyd_notify_queued_alerts", "ops") == 1
    assert rig.gauge("anomalyd_notify_groups") == 0
