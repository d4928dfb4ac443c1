"""Alertmanager's API v2 without a web server: the cluster view of the alerts topic, the
alert filters, silenced and inhibited state as delivery decides it, and the shapes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import pytest
from multidict import MultiDict
from pydantic import SecretStr

from anomalyd.alert import firing, resolved
from anomalyd.clock import ManualClock
from anomalyd.config import AnomalydConfig
from anomalyd.config.routing import InhibitRule, Silence
from anomalyd.domain import Alert
from anomalyd.notify.group import Held
from anomalyd.notify.inhibit import Inhibitor
from anomalyd.notify.silence import Silences
from anomalyd.worker.delivery.cluster_alerts import ClusterAlerts, ClusterIndex, Seen, WithHeld
from anomalyd.worker.detection.alert_index import AlertIndex
from anomalyd.worker.http.amapi import AlertFilter, AlertmanagerApi, Mutes
from anomalyd.worker.http.silences import SilenceApi
from anomalyd.worker.http.status import Owners, StatusQuery, with_owners
from anomalyd.worker.http.web import ApiError

T0 = 1_700_000_000.0


def alert(name: str, stream: str, severity: str = "critical", at: float = T0) -> Alert:
    labels = {"alertname": name, "stream": stream, "severity": severity}
    return firing(labels, {"summary": name}, at, "http://anomalyd.test")


def record(view: ClusterAlerts, item: Alert, worker: str = "w1:8000", at: float = T0) -> None:
    view.apply_record(orjson.dumps(item.to_json()), [("worker", worker.encode())], int(at * 1000))


# --- the cluster view ---------------------------------------------------------------------


def test_the_view_holds_the_latest_state_of_each_alert_and_who_wrote_it() -> None:
    view = ClusterAlerts()
    a, b = alert("A", "a"), alert("B", "b")
    record(view, a, "w1:8000")
    record(view, b, "w2:8000", at=T0 + 5)
    assert [seen.alert for seen in view.firing()] == [a, b]
    assert (view.owner("a"), view.owner("b"), view.owner("c")) == ("w1:8000", "w2:8000", None)
    assert set(view.workers()) == {"w1:8000", "w2:8000"}
    record(view, resolved(a, T0 + 10), "w1:8000")
    assert [seen.alert for seen in view.firing()] == [b]
    latest = view.get(a.fingerprint)
    assert latest is not None
    assert latest.alert.status.value == "resolved"


def test_a_replayed_earlier_state_never_brings_an_alert_back() -> None:
    view = ClusterAlerts()
    a = alert("A", "a")
    record(view, a)
    record(view, resolved(a, T0 + 10))
    record(view, a)  # replayed after a crash
    assert view.firing() == []
    again = alert("A", "a", at=T0 + 20)  # a new episode does fire again
    record(view, again)
    assert [seen.alert for seen in view.firing()] == [again]


def test_alerts_held_in_groups_fill_in_what_the_topic_no_longer_has() -> None:
    view = ClusterAlerts()
    old, gone, done = alert("A", "old"), alert("A", "gone"), alert("A", "done")
    record(view, gone)
    record(view, done)
    record(view, resolved(done, T0 + 5))
    held = [
        Held(old, 0, T0),  # fires since before the topic's retention
        Held(gone, 0, T0),  # in the view too
        Held(done, 0, T0),  # held, not yet flushed resolved: the view knows better
    ]
    merged = WithHeld(view, lambda: held).firing()
    assert sorted(seen.alert.labels["stream"] for seen in merged) == ["gone", "old"]
    assert [seen.worker for seen in merged if seen.alert == gone] == ["w1:8000"]


def test_api_alerts_lists_every_workers_firing_alerts_and_its_own_newer_states() -> None:
    view = ClusterAlerts()
    mine, theirs = alert("A", "mine"), alert("A", "theirs", at=T0 + 1)
    record(view, mine)
    record(view, theirs, "w2:8000")
    local = AlertIndex()
    local.add(mine)
    local.add(resolved(mine, T0 + 5))  # written, not yet read back into the view
    index = ClusterIndex(local, WithHeld(view, list))
    assert index.active(lambda a: True) == [theirs]
    assert index.recent(lambda a: True)[0].status.value == "resolved"  # still this worker's
    late = alert("A", "late", at=T0 + 9)
    local.add(late)  # not yet in the view
    assert index.active(lambda a: True) == [late, theirs]
    assert index.active(lambda a: a.labels["stream"] == "late") == [late]


def test_a_record_the_view_cannot_read_is_skipped() -> None:
    view = ClusterAlerts()
    for value in (None, b"not json", b"[1]", b'{"labels": {}}'):
        view.apply_record(value, [], 0)
    record(view, alert("A", "a"))
    assert len(view.firing()) == 1


def test_resolved_alerts_are_remembered_within_a_bound() -> None:
    view = ClusterAlerts(resolved=2)
    alerts = [alert("A", f"s{i}") for i in range(3)]
    for item in alerts:
        record(view, resolved(item, T0 + 1))
    assert view.get(alerts[0].fingerprint) is None
    assert view.get(alerts[2].fingerprint) is not None


# --- the API ------------------------------------------------------------------------------


class Store:
    def __init__(self, silences: Silences) -> None:
        self.silences = silences

    async def save_silence(self, silence: Silence) -> None:
        self.silences.apply(silence.stable_id(), silence)

    def new_silence_id(self) -> str:
        return "new"


class View:
    def __init__(self, *alerts: Alert) -> None:
        self.seen = [Seen(item, "w1:8000", T0 + 1) for item in alerts]

    def firing(self) -> list[Seen]:
        return self.seen

    def workers(self) -> dict[str, float]:
        return {"w2:8000": T0}


INHIBIT = {
    "source_matchers": ['severity="critical"'],
    "target_matchers": ['severity="warning"'],
    "equal": ["stream"],
}


def api(*alerts: Alert, silences: tuple[dict[str, Any], ...] = ()) -> AlertmanagerApi:
    clock = ManualClock(T0 + 60)
    config = AnomalydConfig.model_validate(
        {
            "receivers": [
                {"name": "oncall", "type": "webhook", "url": "http://127.0.0.1:1/secret"},
                {"name": "tickets", "type": "webhook", "url": "http://127.0.0.1:1/t"},
            ],
            "route": {
                "receiver": "tickets",
                "group_by": ["alertname"],
                "routes": [{"receiver": "oncall", "matchers": ['severity="critical"']}],
            },
            "inhibit_rules": [INHIBIT],
        }
    )
    muting = Silences([Silence.model_validate(s) for s in silences])
    held = list(alerts)  # delivery's groups hold what fires

    def inhibitor() -> Inhibitor:
        rules = [InhibitRule.model_validate(rule) for rule in config.inhibit_rules]
        return Inhibitor(rules, lambda: held)

    silence_api = SilenceApi(Store(muting), SecretStr("t"), clock)
    return AlertmanagerApi(
        View(*alerts),
        silence_api,
        Mutes(muting, inhibitor),
        config=lambda: config,
        clock=clock,
        worker="w1:8000",
        token=SecretStr("t"),
    )


def shown(
    amapi: AlertmanagerApi, query: Mapping[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    return {
        a["labels"]["stream"] + "/" + a["labels"]["severity"]: a for a in amapi.alerts(query or {})
    }


def test_each_alert_shows_its_receivers_and_what_mutes_it_as_delivery_would() -> None:
    critical, warning = alert("A", "s"), alert("B", "s", "warning")
    other = alert("B", "t", "warning")
    amapi = api(critical, warning, other, silences=({"id": "q", "matchers": ['stream="t"']},))
    alerts = shown(amapi)
    assert alerts["s/critical"]["status"] == {
        "state": "active",
        "silencedBy": [],
        "inhibitedBy": [],
    }
    assert alerts["s/critical"]["receivers"] == [{"name": "oncall"}]
    assert alerts["s/warning"]["status"] == {
        "state": "suppressed",
        "silencedBy": [],
        "inhibitedBy": [critical.fingerprint],
    }
    assert alerts["s/warning"]["receivers"] == [{"name": "tickets"}]
    assert alerts["t/warning"]["status"]["silencedBy"] == ["q"]
    assert alerts["t/warning"]["updatedAt"] == "2023-11-14T22:13:21.000Z"


def test_the_filters_are_alertmanagers() -> None:
    critical, warning = alert("A", "s"), alert("B", "s", "warning")
    other = alert("B", "t", "warning")
    amapi = api(critical, warning, other, silences=({"id": "q", "matchers": ['stream="t"']},))
    assert set(shown(amapi, {"silenced": "false"})) == {"s/critical", "s/warning"}
    assert set(shown(amapi, {"inhibited": "false"})) == {"s/critical", "t/warning"}
    assert set(shown(amapi, {"active": "false"})) == {"s/warning", "t/warning"}
    assert set(shown(amapi, {"receiver": "on.*"})) == {"s/critical"}
    assert set(shown(amapi, {"receiver": "on"})) == set()  # anchored, as Alertmanager's
    both = MultiDict([("filter", 'severity="warning"'), ("filter", "stream=~t|u")])
    assert set(shown(amapi, both)) == {"t/warning"}
    bad_queries: list[dict[str, str]] = [
        {"filter": "no matcher"},
        {"filter": 'a=~"(a)\\1"'},  # RE2: no backreferences
        {"receiver": "(a)\\1"},
        {"receiver": "\udcff"},
        {"active": "yes"},
    ]
    for bad in bad_queries:
        with pytest.raises(ApiError) as raised:
            AlertFilter.parse(bad)
        assert raised.value.status == 400


def test_groups_follow_the_routes() -> None:
    amapi = api(alert("A", "s"), alert("A", "t"), alert("B", "s", "warning"))
    groups = {
        (g["receiver"]["name"], g["labels"]["alertname"]): len(g["alerts"])
        for g in amapi.groups({})
    }
    assert groups == {("oncall", "A"): 2, ("tickets", "B"): 1}


async def test_silences_in_alertmanagers_shape_filtered_by_their_matchers() -> None:
    amapi = api(
        silences=(
            {"id": "q", "matchers": ['stream="t"']},
            {"matchers": ['alertname="A"'], "endsAt": T0 + 3600},
        )
    )
    every = amapi.silences({})
    assert [s["status"]["state"] for s in every] == ["active", "active"]
    assert all(s["startsAt"] and s["endsAt"] and s["updatedAt"] for s in every)
    assert every[0]["endsAt"] == "9999-12-31T23:59:59.000Z"  # a config silence without end
    assert [s["id"] for s in amapi.silences({"filter": 'stream="t"'})] == ["q"]
    assert (await amapi.silence("q"))["id"] == "q"


def test_status_shows_no_receiver_url() -> None:
    status = api().status()
    assert status["cluster"]["peers"] == [
        {"name": "w1:8000", "address": "w1:8000"},
        {"name": "w2:8000", "address": "w2:8000"},
    ]
    assert "oncall" in status["config"]["original"]
    assert "secret" not in status["config"]["original"]
    assert api().receivers() == [{"name": "oncall"}, {"name": "tickets"}]


def test_status_names_the_worker_of_each_stream() -> None:
    body = {"version": "x", "streams": {"count": 1, "shown": 1, "items": [{"name": "a"}]}}
    owners = Owners("w1:8000", {"b": "w2:8000"}.get)
    shown = with_owners(body, StatusQuery(), owners)
    assert shown["worker"] == "w1:8000"
    assert shown["streams"]["items"] == [{"name": "a", "worker": "w1:8000"}]
    empty = {"streams": {"count": 1, "shown": 0, "items": []}}
    for stream, worker in (("b", "w2:8000"), ("c", None)):
        elsewhere = with_owners(empty, StatusQuery(stream=stream), owners)["streams"]["elsewhere"]
        assert elsewhere == {"name": stream, "worker": worker}
