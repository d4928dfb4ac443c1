"""A bug the reliability scenarios found, now fixed: a reused notification id (each episode
of an alert is a new notification; a redo of the same episode keeps its id)."""

from __future__ import annotations

from anomalyd.alert import firing, resolved
from anomalyd.notify.dedup import plan
from anomalyd.notify.stage import FlushContext

T0 = 1_700_000_000.0
LABELS = {"alertname": "LatencyHigh", "stream": "db"}


def ctx(now: float) -> FlushContext:
    return FlushContext(now, "oncall", '{}:{alertname="LatencyHigh"}', {}, 4 * 3600.0)


def test_the_next_episode_of_an_alert_is_a_new_notification() -> None:
    """Once a group resolved and closed, its log entry is forgotten (entry None). The next
    time the same alert fires, the page must not reuse the first page's `webhook-id`:
    receivers that drop ids they have seen, as the README tells them to, would drop it."""
    first = plan(ctx(T0 + 1), None, [firing(LABELS, {}, T0, "x")], muted=set())
    again = plan(ctx(T0 + 900), None, [firing(LABELS, {}, T0 + 890, "x")], muted=set())
    assert first.notification_id != again.notification_id


def test_a_redo_of_the_same_episode_keeps_its_id() -> None:
    """The same alert state decided again (a retry, a crash before it was recorded, a
    replay) is the same notification, whenever it is flushed."""
    alert = firing(LABELS, {}, T0, "x")
    assert (
        plan(ctx(T0 + 1), None, [alert], muted=set()).notification_id
        == plan(ctx(T0 + 60), None, [alert], muted=set()).notification_id
    )
    # ...and a resolution still follows the recorded firing with an id of its own.
    sent = plan(ctx(T0 + 1), None, [alert], muted=set())
    resolution = plan(ctx(T0 + 9), sent.entry, [resolved(alert, T0 + 8)], muted=set())
    assert resolution.notification_id != sent.notification_id
