"""Routing: which routes take an alert (Alertmanager's tree walk, as a table), the options
children inherit, and the group keys (route path, then group labels)."""

from __future__ import annotations

from typing import Any

import pytest

from anomalyd.config.routing import Route
from anomalyd.notify.route import build_tree, group_key, group_labels, match_routes, walk

TREE = Route.model_validate(
    {
        "receiver": "default",
        "group_by": ["alertname"],
        "group_wait": "10s",
        "routes": [
            {
                "receiver": "pager",
                "matchers": ['severity="critical"'],
                "group_wait": "0s",
                "routes": [
                    {"receiver": "db-pager", "matchers": ['stream=~"db\\\\..*"']},
                ],
            },
            {"receiver": "audit", "matchers": ['region!="us"'], "continue": True},
            {"receiver": "checkout", "matchers": ['stream=~"checkout\\\\..*"']},
            {"receiver": "never", "matchers": ['stream=~"checkout\\\\..*"']},
        ],
    }
)
ROOT = build_tree(TREE)


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ({"severity": "critical", "stream": "checkout.latency", "region": "us"}, ["pager"]),
        ({"severity": "critical", "stream": "db.conn", "region": "us"}, ["db-pager"]),
        # continue: audit takes it and the walk goes on to the next sibling
        (
            {"severity": "warning", "stream": "checkout.latency", "region": "eu"},
            ["audit", "checkout"],
        ),
        ({"severity": "warning", "stream": "checkout.latency", "region": "us"}, ["checkout"]),
        # no child matches: the root takes it
        ({"severity": "warning", "stream": "search.latency", "region": "us"}, ["default"]),
        # only a continue route matched: it alone takes it (the root does not)
        ({"severity": "warning", "stream": "search.latency"}, ["audit"]),
        # first match wins over later siblings: critical goes to pager, not audit/checkout
        ({"severity": "critical", "stream": "checkout.x", "region": "eu"}, ["pager"]),
    ],
)
def test_match_routes(labels: dict[str, str], receivers: list[str]) -> None:
    assert [route.receiver for route in match_routes(ROOT, labels)] == receivers


def test_children_inherit_unset_options_and_the_root_takes_alertmanager_defaults() -> None:
    by_receiver = {node.receiver: node for node in walk(ROOT)}
    assert by_receiver["default"].group_interval == 300.0
    assert by_receiver["default"].repeat_interval == 4 * 3600.0
    assert by_receiver["pager"].group_wait == 0.0
    assert by_receiver["db-pager"].group_wait == 0.0  # from pager, not the root
    assert by_receiver["audit"].group_wait == 10.0
    assert by_receiver["db-pager"].group_by == ("alertname",)
    bare = build_tree(Route(receiver="x"))
    assert (bare.group_by, bare.group_wait) == ((), 30.0)


def test_a_child_without_a_receiver_uses_its_parents() -> None:
    tree = build_tree(Route.model_validate({"receiver": "a", "routes": [{"matchers": ["x=y"]}]}))
    assert tree.routes[0].receiver == "a"


def test_route_keys_and_paths() -> None:
    assert ROOT.key == "{}"
    assert ROOT.path == "route"
    pager = ROOT.routes[0]
    assert pager.key == '{}/{severity="critical"}'
    assert pager.routes[0].key == '{}/{severity="critical"}/{stream=~"db\\\\..*"}'
    assert pager.routes[0].path == "route.routes[0].routes[0]"
    # matchers are sorted as Alertmanager sorts them, whatever the order written
    swapped = build_tree(
        Route.model_validate({"receiver": "a", "routes": [{"matchers": ["b=2", "a!=1", "a=1"]}]})
    )
    assert swapped.routes[0].key == '{}/{a="1",a!="1",b="2"}'


@pytest.mark.parametrize(
    ("group_by", "labels", "expected"),
    [
        (["alertname"], {"alertname": "X", "stream": "s"}, {"alertname": "X"}),
        (["alertname", "missing"], {"alertname": "X"}, {"alertname": "X"}),
        ([], {"alertname": "X"}, {}),
        (["..."], {"alertname": "X", "stream": "s"}, {"alertname": "X", "stream": "s"}),
    ],
)
def test_group_labels(group_by: list[str], labels: dict[str, str], expected: Any) -> None:
    node = build_tree(Route(receiver="r", group_by=group_by))
    assert group_labels(node, labels) == expected


def test_group_key_has_the_route_path_then_the_group_labels() -> None:
    pager = ROOT.routes[0]
    key = group_key(pager, {"stream": "a", "alertname": 'say "hi"'})
    assert key == '{}/{severity="critical"}:{alertname="say \\"hi\\"", stream="a"}'
    assert group_key(ROOT, {}) == "{}:{}"
