"""What a reload applies live and what waits for a restart (`config.diff`), and the
config version every alert carries (`config.version`)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from anomalyd.config import (
    AnomalydConfig,
    ConfigError,
    config_version,
    diff_configs,
    live_config,
    parse_config,
)
from anomalyd.config.diff import LIVE_SECTIONS, RESTART_SECTIONS

BASE: dict[str, Any] = {
    "app": {"id": "anomalyd", "data_dir": "/var/lib/anomalyd"},
    "kafka": {"brokers": ["kafka-1:9092"]},
    "http": {"port": 6066, "api_token": "${API_TOKEN}"},
    "rules": [
        {"name": "High", "type": "above", "threshold": 500},
        {"name": "Silent", "type": "absence", "for": "1m"},
    ],
    "receivers": [
        {"name": "hook", "type": "webhook", "url": "https://example.com/hook"},
        {"name": "log", "type": "log"},
    ],
    "route": {"receiver": "hook"},
}
ENV = {"API_TOKEN": "token-one"}


def config(edit: dict[str, Any] | None = None, environ: dict[str, str] = ENV) -> AnomalydConfig:
    raw = copy.deepcopy(BASE)
    for path, value in (edit or {}).items():
        node = raw
        *parents, last = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return parse_config(yaml.safe_dump(raw), environ=environ)


@pytest.mark.parametrize(
    ("edit", "applied", "restart"),
    [
        ({}, (), ()),
        ({"rules": [{"name": "High", "type": "above", "threshold": 300}]}, ("rules",), ()),
        ({"model.threshold": 0.7}, ("model",), ()),
        ({"model.overrides": [{"streams": ["a.*"], "mode": "shadow"}]}, ("model",), ()),
        ({"drift.window": "10m"}, ("drift",), ()),
        ({"alerting.absence_check_interval": "5s"}, ("alerting",), ()),
        ({"ingest.max_labels": 8}, ("ingest",), ()),
        ({"route": {"receiver": "log"}}, ("route",), ()),
        (
            {"inhibit_rules": [{"source_matchers": ["a=b"], "target_matchers": ["c=d"]}]},
            ("inhibit_rules",),
            (),
        ),
        ({"silences": [{"matchers": ["stream=x"], "comment": "maintenance"}]}, ("silences",), ()),
        ({"delivery.max_attempts": 3}, ("delivery",), ()),
        (
            {"receivers": [{"name": "hook", "type": "log"}, {"name": "log", "type": "log"}]},
            ("receivers",),
            (),
        ),
        ({"app.id": "other"}, (), ("app.id",)),
        ({"app.data_dir": "/tmp/x"}, (), ("app.data_dir",)),
        ({"app.log_level": "debug"}, (), ("app.log_level",)),
        ({"kafka.brokers": ["kafka-2:9092"]}, (), ("kafka.brokers",)),
        ({"kafka.partitions": 8}, (), ("kafka.partitions",)),
        ({"topics.events": "in"}, (), ("topics.events",)),
        ({"http.port": 7000}, (), ("http.port",)),
        ({"state.snapshot_interval": "1m"}, (), ("state.snapshot_interval",)),
        (
            {"http.port": 7000, "model.threshold": 0.7, "kafka.partitions": 8},
            ("model",),
            ("kafka.partitions", "http.port"),
        ),
    ],
)
def test_which_changes_apply_live(
    edit: dict[str, Any], applied: tuple[str, ...], restart: tuple[str, ...]
) -> None:
    diff = diff_configs(config(), config(edit))
    assert diff.applied == applied
    assert diff.restart == restart
    assert diff.changed == bool(applied or restart)


def test_every_section_is_either_live_or_needs_a_restart() -> None:
    """A new section must be classified here, or a reload would ignore it silently."""
    assert set(LIVE_SECTIONS) | set(RESTART_SECTIONS) == set(AnomalydConfig.model_fields)
    assert not set(LIVE_SECTIONS) & set(RESTART_SECTIONS)


def test_a_changed_secret_is_a_key_that_needs_a_restart_and_its_value_is_not_shown() -> None:
    diff = diff_configs(config(), config(environ={"API_TOKEN": "token-two"}))
    assert diff.restart == ("http.api_token",)
    assert "token-one" not in repr(diff)
    assert "token-two" not in repr(diff)


def test_the_live_config_keeps_the_running_sections_that_need_a_restart() -> None:
    running = config()
    new = config({"http.port": 7000, "kafka.partitions": 8, "model.threshold": 0.7})
    live = live_config(running, new)
    assert live.http == running.http
    assert live.kafka == running.kafka
    assert live.model == new.model
    assert diff_configs(running, live).restart == ()
    assert diff_configs(live, new).applied == ()


# --- the version ----------------------------------------------------------------------------------


def test_the_version_is_a_short_hex_hash_stable_across_loads_and_key_order() -> None:
    version = config_version(config())
    assert len(version) == 12
    int(version, 16)
    reordered = yaml.safe_dump(dict(reversed(list(BASE.items()))), sort_keys=False)
    assert config_version(parse_config(reordered, environ=ENV)) == version
    assert config_version(config()) == version


def test_the_version_changes_with_what_decides_alerts() -> None:
    base = config_version(config())
    assert config_version(config({"model.threshold": 0.7})) != base
    assert (
        config_version(config({"rules": [{"name": "High", "type": "above", "threshold": 3}]}))
        != base
    )


def test_the_version_does_not_depend_on_secret_values() -> None:
    def with_secrets(token: str, key: str, password: str) -> AnomalydConfig:
        return config(
            {
                "receivers": [
                    {
                        "name": "hook",
                        "type": "webhook",
                        "url": "https://example.com/hook",
                        "secret": key,
                        "bearer_token": password,
                    },
                    {
                        "name": "log",
                        "type": "email",
                        "smarthost": "smtp.example.com:587",
                        "from": "a@example.com",
                        "to": ["b@example.com"],
                        "auth": {"username": "u", "password": password},
                    },
                ]
            },
            environ={"API_TOKEN": token},
        )

    one = with_secrets("token-one", "whsec_" + "QUJD" * 8, "password-one")
    two = with_secrets("token-two", "whsec_" + "REVG" * 8, "password-two")
    assert config_version(one) == config_version(two)


def test_a_yaml_error_does_not_quote_the_file() -> None:
    """Problems go to logs and /api/status: the offending line may hold a secret."""
    with pytest.raises(ConfigError) as raised:
        parse_config('http:\n  api_token: "s3cr3t-value\n  port: [1\n', environ={})
    [problem] = raised.value.problems
    assert problem.startswith("not valid YAML: ")
    assert "at line 2, column 14" in problem
    assert "s3cr3t" not in problem
