"""`anomalyd routes test LABEL=VALUE...`: which receivers a label set reaches, as
`amtool config routes test` answers it, from the same routing tree the worker builds."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

from anomalyd.config import AnomalydConfig
from anomalyd.config.routing import default_route
from anomalyd.notify.route import RouteNode, build_tree, group_key, group_labels, match_routes

HELP = "Print the receivers an alert with these labels reaches (as amtool config routes test)."
_LABEL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("labels", nargs="*", metavar="LABEL=VALUE", help="the alert's labels")
    parser.add_argument(
        "--verify-receivers",
        metavar="A,B",
        help="exit 1 unless exactly these receivers (comma-separated, in order) are reached",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also print each route taken and its group"
    )


def parse_labels(items: Sequence[str]) -> dict[str, str]:
    """`name=value` pairs; a value may be double-quoted. ValueError names the bad one."""
    labels: dict[str, str] = {}
    for item in items:
        found = _LABEL.fullmatch(item)
        if found is None:
            raise ValueError(
                f"{item!r} is not LABEL=VALUE (a label name is [A-Za-z_][A-Za-z0-9_]*)"
            )
        value = found.group(2)
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        labels[found.group(1)] = value
    return labels


def reached(root: RouteNode, labels: dict[str, str]) -> list[RouteNode]:
    return match_routes(root, labels)


def receiver_names(routes: Sequence[RouteNode]) -> list[str]:
    """The receivers of the routes taken, in order, each once."""
    return list(dict.fromkeys(route.receiver for route in routes))


def run(config: AnomalydConfig, args: argparse.Namespace) -> int:
    try:
        labels = parse_labels(args.labels)
    except ValueError as error:
        print(f"routes test: {error}", file=sys.stderr)
        return 2
    route = config.route or default_route([r.name for r in config.receivers])
    if route is None:
        print("routes test: no receivers are configured: alerts go nowhere", file=sys.stderr)
        return 1
    routes = reached(build_tree(route), labels)
    names = receiver_names(routes)
    print(",".join(names))
    if args.verbose:
        for node in routes:
            key = group_key(node, group_labels(node, labels))
            print(f"  {node.path}: receiver {node.receiver}, group {key}")
    if args.verify_receivers is not None:
        expected = [name.strip() for name in args.verify_receivers.split(",") if name.strip()]
        if expected != names:
            print(
                f"routes test: expected receivers {','.join(expected)}, got {','.join(names)}",
                file=sys.stderr,
            )
            return 1
    return 0
