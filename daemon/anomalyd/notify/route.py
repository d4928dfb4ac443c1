"""Route: which receivers an alert goes to, and how it is grouped there. Alertmanager's
routing tree (`dispatch/route.go`): a node matches when all its matchers do; its
children are tried in order and the first that matches wins unless it says
`continue`; a node none of whose children match takes the alert itself. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from anomalyd.config.matchers import Matcher, go_quote, matches_all
from anomalyd.config.routing import ALL_LABELS, ROOT_DEFAULTS, Route


@dataclass(frozen=True, slots=True)
class RouteNode:
    """A route with every option resolved (inherited from its parents or defaulted).

    `key` is Alertmanager's route key (`{}`, `{}/{severity="critical"}`), the first half
    of a group key; `path` is where the route is in the config (`route.routes[1]`), and
    tells apart siblings with the same matchers."""

    key: str
    path: str
    receiver: str
    group_by: tuple[str, ...] | None  # None: all labels ('...')
    group_wait: float
    group_interval: float
    repeat_interval: float
    matchers: tuple[Matcher, ...]
    continue_: bool
    routes: tuple[RouteNode, ...]


def build_tree(route: Route) -> RouteNode:
    """Resolve the config tree: children inherit what they leave unset."""
    return _build(route, dict(ROOT_DEFAULTS), None, None, "route")


def _build(
    route: Route,
    inherited: dict[str, Any],
    receiver: str | None,
    parent_key: str | None,
    path: str,
) -> RouteNode:
    options = {
        name: getattr(route, name) if getattr(route, name) is not None else inherited[name]
        for name in ("group_by", "group_wait", "group_interval", "repeat_interval")
    }
    own_receiver = route.receiver if route.receiver is not None else receiver
    if own_receiver is None:
        raise ValueError(f"{path}: no receiver (the root route needs one)")
    matchers = tuple(sorted(route.matchers, key=Matcher.sort_key))
    own_key = "{" + ",".join(str(m) for m in matchers) + "}"
    key = own_key if parent_key is None else f"{parent_key}/{own_key}"
    children = tuple(
        _build(child, options, own_receiver, key, f"{path}.routes[{i}]")
        for i, child in enumerate(route.routes)
    )
    group_by = options["group_by"]
    return RouteNode(
        key=key,
        path=path,
        receiver=own_receiver,
        group_by=None if group_by == [ALL_LABELS] else tuple(group_by),
        group_wait=options["group_wait"],
        group_interval=options["group_interval"],
        repeat_interval=options["repeat_interval"],
        matchers=matchers,
        continue_=route.continue_,
        routes=children,
    )


def match_routes(node: RouteNode, labels: Mapping[str, str]) -> list[RouteNode]:
    """The routes that take an alert with these labels, in tree order (Alertmanager's
    `Route.Match`). The root has no matchers, so every alert has at least one route."""
    if not matches_all(node.matchers, labels):
        return []
    taken: list[RouteNode] = []
    for child in node.routes:
        matched = match_routes(child, labels)
        taken.extend(matched)
        if matched and not child.continue_:
            break
    return taken or [node]


def group_labels(node: RouteNode, labels: Mapping[str, str]) -> dict[str, str]:
    """The labels that identify the alert's group on this route: the `group_by` labels
    the alert has, or all its labels for `['...']`."""
    if node.group_by is None:
        return dict(labels)
    return {name: labels[name] for name in node.group_by if name in labels}


def group_key(node: RouteNode, labels: Mapping[str, str]) -> str:
    """Alertmanager's group key: `{route key}:{group labels}`, e.g.
    `{}/{severity="critical"}:{alertname="X", stream="y"}`."""
    inner = ", ".join(f"{name}={go_quote(labels[name])}" for name in sorted(labels))
    return f"{node.key}:{{{inner}}}"


def walk(node: RouteNode) -> list[RouteNode]:
    """Every node of the tree, depth first."""
    nodes = [node]
    for child in node.routes:
        nodes.extend(walk(child))
    return nodes
