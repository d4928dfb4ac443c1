"""The `anomalyd` command line. Exit codes: 0 success, 1 runtime failure,
2 usage error, 78 invalid configuration (EX_CONFIG)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Sequence

from anomalyd import __version__
from anomalyd.config import AnomalydConfig, ConfigError, load_config, parse_config
from anomalyd.validate import load_checked

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 78

DEFAULT_CONFIG = "config/anomalyd.yaml"
#: The config sections each command uses (the worker: all). The others are not read, so
#: a command runs without, say, the receivers' secrets it never needs.
USES: dict[str, frozenset[str]] = {
    "broker": frozenset({"app", "kafka"}),
    "demo": frozenset({"app", "kafka", "topics"}),
    "send": frozenset({"app", "kafka", "topics", "ingest"}),
    "backtest": frozenset({"app", "ingest", "rules", "model", "drift", "alerting"}),
    "routes": frozenset({"app", "receivers", "route"}),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anomalyd",
        description="Streaming anomaly alerting daemon: Kafka events in, alerts pushed out.",
    )
    parser.add_argument("--version", action="version", version=f"anomalyd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_, description=help_)
        return sub

    def with_config(sub: argparse.ArgumentParser) -> None:
        # None when not given: backtest tells "not given" from "given and missing".
        sub.add_argument(
            "--config", help=f"config file (default: $ANOMALYD_CONFIG or {DEFAULT_CONFIG})"
        )

    with_config(command("worker", "Run the daemon: consume events, score them, push alerts."))

    check = command("check-config", "Validate config files; print every problem; exit 78 if any.")
    check.add_argument("paths", nargs="*", help="files to check (default: --config)")
    with_config(check)
    check.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key as `backtest --set` does (repeatable)",
    )

    broker = command("broker", "Run the embedded Kafka-compatible broker alone, in the foreground.")
    with_config(broker)
    broker.add_argument("--port", type=int, help="override kafka.embedded.port")

    from anomalyd.backtest import cli as backtest_cli

    backtest = command("backtest", backtest_cli.HELP)
    with_config(backtest)
    backtest_cli.add_arguments(backtest)

    from anomalyd import verify_webhook

    verify_webhook.add_arguments(command("verify-webhook", verify_webhook.HELP))

    demo = command(
        "demo", "Produce realistic demo traffic with injected anomalies to the events topic."
    )
    with_config(demo)
    demo.add_argument("--rate", type=float, default=20.0, help="events per second (default 20)")
    demo.add_argument("--duration", type=float, help="seconds to run (default: until interrupted)")
    demo.add_argument(
        "--anomaly-every",
        type=float,
        default=60.0,
        help="seconds between injected anomalies (default 60)",
    )
    demo.add_argument("--seed", type=int, default=7)

    from anomalyd import routetest, send

    sender = command("send", send.HELP)
    with_config(sender)
    send.add_arguments(sender)

    routes = command("routes", "Inspect the routing tree.")
    routes_commands = routes.add_subparsers(dest="routes_command", required=True, metavar="COMMAND")
    routes_test = routes_commands.add_parser(
        "test", help=routetest.HELP, description=routetest.HELP
    )
    with_config(routes_test)
    routetest.add_arguments(routes_test)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check-config":
        return _check_config(args.paths or [config_path(args)], args.overrides)
    if args.command == "verify-webhook":
        from anomalyd import verify_webhook

        return verify_webhook.run(args, time.time())
    try:
        config = _load(args)
    except ConfigError as error:
        _print_problems(error)
        return EXIT_CONFIG
    if args.command == "worker":
        from anomalyd.worker.run import run_worker

        return run_worker(config, config_path(args))
    if args.command == "broker":
        return _broker(config, args.port)
    if args.command == "backtest":
        from anomalyd.backtest import cli as backtest_cli

        return backtest_cli.run(config, args)
    if args.command == "demo":
        return _demo(config, args.rate, args.duration, args.seed, args.anomaly_every)
    if args.command == "send":
        return _send(config, args)
    if args.command == "routes":
        from anomalyd import routetest

        return routetest.run(config, args)
    raise AssertionError(f"unhandled command {args.command}")


def config_path(args: argparse.Namespace) -> str:
    given: str | None = args.config
    return given or os.environ.get("ANOMALYD_CONFIG") or DEFAULT_CONFIG


def _load(args: argparse.Namespace) -> AnomalydConfig:
    """The config a command runs on, checked as far as the command uses it."""
    overrides = getattr(args, "overrides", ())
    if args.command == "worker":
        # The worker builds its receivers: check them as check-config does, before it starts.
        return load_checked(config_path(args), overrides=overrides)
    ignore = set(AnomalydConfig.model_fields) - USES[args.command]
    path = config_path(args)
    if args.command == "backtest" and _no_config_given(args) and not os.path.exists(path):
        print(f"backtest: no {path}: running on the defaults (see --config)", file=sys.stderr)
        return parse_config("{}", source="defaults", overrides=overrides)
    return load_config(path, overrides=overrides, ignore=ignore)


def _no_config_given(args: argparse.Namespace) -> bool:
    return args.config is None and not os.environ.get("ANOMALYD_CONFIG")


def _check_config(paths: Sequence[str], overrides: Sequence[str] = ()) -> int:
    failed = False
    for path in paths:
        try:
            config = load_checked(path, overrides=overrides)
        except ConfigError as error:
            _print_problems(error)
            failed = True
            continue
        print(f"{path}: ok ({len(config.rules)} rules, {len(config.receivers)} receivers)")
    return EXIT_CONFIG if failed else EXIT_OK


def _print_problems(error: ConfigError) -> None:
    print(f"{error.source}: {len(error.problems)} problem(s)", file=sys.stderr)
    for problem in error.problems:
        print(f"  - {problem}", file=sys.stderr)


def _broker(config: AnomalydConfig, port: int | None) -> int:
    from anomalyd.logs import configure_logging
    from anomalyd.worker.kafka.broker import run_broker_forever

    configure_logging(config.app.log_level)
    return run_broker_forever(config.kafka.embedded.host, port or config.kafka.embedded.port)


def _send(config: AnomalydConfig, args: argparse.Namespace) -> int:
    from anomalyd import send
    from anomalyd.logs import configure_logging

    configure_logging(config.app.log_level)
    try:
        return send.run(config, args)
    except ConnectionError as error:
        print(f"send: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE


def _demo(
    config: AnomalydConfig, rate: float, duration: float | None, seed: int, anomaly_every: float
) -> int:
    from anomalyd.demo import produce_demo
    from anomalyd.logs import configure_logging

    configure_logging(config.app.log_level)
    # Started in the background by a shell (`make run`), Python inherits SIGINT ignored;
    # take it back, so that Ctrl-C stops the demo with the worker, while the broker the
    # worker runs is still there to flush to, not after (a storm of client errors).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    bootstrap = ",".join(config.kafka.bootstrap)
    try:
        asyncio.run(
            produce_demo(
                bootstrap,
                config.topics.events,
                rate,
                time.time,
                duration,
                seed,
                anomaly_every_s=anomaly_every,
            )
        )
    except KeyboardInterrupt:
        return EXIT_OK
    return EXIT_OK
