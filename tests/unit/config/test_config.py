"""Config loading: variable expansion, environment overrides, strictness, and problem
reports that name every mistake by the path the user wrote."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anomalyd.config import (
    AboveRule,
    AbsenceRule,
    AnomalydConfig,
    ConfigError,
    LogReceiver,
    WebhookReceiver,
    ZScoreRule,
    load_config,
    parse_config,
    parse_duration,
)
from anomalyd.config.loader import EMPTY_FILE


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Overrides come from os.environ; start each test without any ANOMALYD_ variable."""
    import os

    for name in list(os.environ):
        if name.startswith("ANOMALYD_"):
            monkeypatch.delenv(name)


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, environ=environ or {})
    assert caught.value.problems
    return caught.value.problems


def paths(text: str, environ: dict[str, str] | None = None) -> list[str]:
    return [p.split(": ", 1)[0] for p in problems(text, environ)]


# --- defaults and a full file -------------------------------------------------------------------


def test_an_empty_mapping_gives_defaults() -> None:
    config = parse_config("{}", environ={})
    assert config == AnomalydConfig()
    assert config.kafka.is_embedded
    assert config.kafka.bootstrap == ["127.0.0.1:9092"]
    assert config.rules == []


@pytest.mark.parametrize("text", ["", "\n  \n", "# only a comment\n", "---\n# truncated\n"])
def test_a_file_with_no_config_is_an_error(text: str) -> None:
    """A truncated or blank file is never what was meant: applied, it would drop every
    rule and receiver. `{}` says "the defaults" on purpose."""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, environ={})
    assert caught.value.problems == [EMPTY_FILE]


FULL = """
app: {id: anomalyd-prod, external_url: "https://alerts.example"}
kafka:
  brokers: ["kafka-1:9092", "kafka-2:9092"]
  session_timeout: 10s
topics: {events: ev}
rules:
  - {name: cpu_high, type: above, threshold: 90, clear_threshold: 80, for: 1m, streams: ["cpu.*"]}
  - {name: odd, type: zscore, field: p99, keep_firing_for: 30s}
  - {name: quiet, type: absence, for: 5m, severity: critical}
receivers:
  - {type: webhook, name: team, url: "http://127.0.0.1:9000/hook", timeout: 250ms}
  - {type: log, name: console}
delivery: {max_attempts: 3, initial_backoff: 100ms, max_backoff: 2s, max_age: 1h}
"""


def test_a_full_file() -> None:
    config = parse_config(FULL, environ={})
    assert config.app.id == "anomalyd-prod"
    assert config.kafka.bootstrap == ["kafka-1:9092", "kafka-2:9092"]
    assert config.kafka.effective_session_timeout == 10.0
    assert config.topics.events == "ev"
    assert config.topics.alerts == "alerts"
    high, odd, quiet = config.rules
    assert isinstance(high, AboveRule)
    assert (high.threshold, high.clear_threshold, high.for_) == (90.0, 80.0, 60.0)
    assert isinstance(odd, ZScoreRule)
    assert (odd.field, odd.keep_firing_for, odd.threshold) == ("p99", 30.0, 4.0)
    assert isinstance(quiet, AbsenceRule)
    assert (quiet.for_, quiet.severity.value) == (300.0, "critical")
    team, console = config.receivers
    assert isinstance(team, WebhookReceiver)
    assert team.timeout == 0.25
    assert isinstance(console, LogReceiver)
    assert config.delivery.max_age == 3600.0


def test_load_config_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "anomalyd.yaml"
    path.write_text(FULL)
    assert load_config(path, environ={}) == parse_config(FULL, environ={})


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(missing, environ={})
    assert caught.value.source == str(missing)
    assert caught.value.problems == ["cannot read the config file: No such file or directory"]


def test_a_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_config(tmp_path, environ={})


@pytest.mark.parametrize(
    "text",
    ["a: [", "x: 'a", "\t", "a: *x", "!!python/object:os.system 'echo'", "a: b: c"],
)
def test_bad_yaml_is_a_config_error(text: str) -> None:
    [problem] = problems(text)
    assert problem.startswith("not valid YAML: ")


@pytest.mark.parametrize("text", ["- 1", "5", "'text'", "[]"])
def test_top_level_must_be_a_mapping(text: str) -> None:
    assert problems(text) == ["the top level must be a mapping of sections"]


@pytest.mark.parametrize("text", ["{1: 2}", "{null: 1}", "{true: 1}", "{[1, 2]: 1}"])
def test_top_level_keys_must_be_text(text: str) -> None:
    assert problems(text)  # a ConfigError, not a TypeError from the model


def test_a_non_text_section_is_listed_with_the_other_problems() -> None:
    assert problems("{app: {bogus: 1}, 3: x}") == [
        "3: a section name must be text",
        "app.bogus: Extra inputs are not permitted",
    ]


def test_config_error_message_lists_everything() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("app: {id: 'a b'}\nhttp: {port: -1}", source="x.yaml", environ={})
    text = str(caught.value)
    assert text.startswith("x.yaml: 2 problem(s)\n")
    assert "app.id" in text
    assert "http.port" in text


# --- variables ----------------------------------------------------------------------------------

EXPANSION_CASES = [
    ("${HOST}", {"HOST": "h1"}, "h1"),
    ("http://${HOST}:${PORT}/x", {"HOST": "h1", "PORT": "80"}, "http://h1:80/x"),
    ("${HOST:-fallback}", {}, "fallback"),
    ("${HOST:-fallback}", {"HOST": "h1"}, "h1"),
    ("${HOST:-fallback}", {"HOST": ""}, "fallback"),  # set but empty takes the default
    ("${HOST}", {"HOST": ""}, ""),  # set but empty, no default: empty
    ("${HOST:-}", {}, ""),
    ("${HOST:-a:b/c}", {}, "a:b/c"),
    ("$$", {}, "$"),
    ("$${HOST}", {"HOST": "h1"}, "${HOST}"),
    ("$$$${HOST}", {"HOST": "h1"}, "$${HOST}"),
    ("$$${HOST}", {"HOST": "h1"}, "$h1"),
    ("cost: $5", {}, "cost: $5"),
    ("$HOST", {"HOST": "h1"}, "$HOST"),  # only the braced form
    ("${HOST", {"HOST": "h1"}, "${HOST"),
    ("${1X}", {}, "${1X}"),  # not a variable name
    ("${A}${B}", {"A": "x", "B": "y"}, "xy"),
    ("${A}", {"A": "${B}", "B": "no"}, "${B}"),  # values are not expanded again
]


@pytest.mark.parametrize(("template", "environ", "expected"), EXPANSION_CASES)
def test_expansion(template: str, environ: dict[str, str], expected: str) -> None:
    config = parse_config(f"app: {{data_dir: '{template}'}}", environ=environ)
    assert config.app.data_dir == expected


def test_expansion_everywhere_in_the_tree() -> None:
    text = """
rules:
  - {name: "${RULE}", type: above, threshold: "${LIMIT}", streams: ["${PREFIX}.*"]}
receivers:
  - {type: webhook, name: w, url: "${HOOK}", headers: {Authorization: "Bearer ${TOKEN}"}}
"""
    environ = {
        "RULE": "r1",
        "LIMIT": "42.5",
        "PREFIX": "cpu",
        "HOOK": "http://127.0.0.1/h",
        "TOKEN": "t",
    }
    config = parse_config(text, environ=environ)
    [rule] = config.rules
    assert (rule.name, rule.threshold, rule.streams) == ("r1", 42.5, ["cpu.*"])
    [hook] = config.receivers
    assert isinstance(hook, WebhookReceiver)
    assert (hook.url, hook.headers) == ("http://127.0.0.1/h", {"Authorization": "Bearer t"})


def test_values_cannot_change_the_structure() -> None:
    config = parse_config("app: {data_dir: '${X}'}", environ={"X": "a\nlog_level: debug"})
    assert config.app.data_dir == "a\nlog_level: debug"
    assert config.app.log_level == "info"


def test_keys_are_not_expanded() -> None:
    assert paths("app: {'${K}': 1}", {"K": "id"}) == ["app.${K}"]


def test_a_missing_variable_is_a_listed_problem() -> None:
    listed = problems(
        "app: {data_dir: '${NOPE}'}\nreceivers: [{type: webhook, name: w, url: 'http://${H}/'}]"
    )
    assert "app.data_dir: environment variable NOPE is not set (use ${NOPE:-default})" in listed
    assert "receivers[0].url: environment variable H is not set (use ${H:-default})" in listed


def test_the_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMALYD_TEST_DIR", "/from/env")
    assert parse_config("app: {data_dir: '${ANOMALYD_TEST_DIR}'}").app.data_dir == "/from/env"


# --- environment overrides ----------------------------------------------------------------------


def test_override_one_leaf_keeps_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMALYD_KAFKA__PARTITIONS", "7")
    config = parse_config("kafka: {partitions: 2, embedded: {port: 1234}}", environ={})
    assert config.kafka.partitions == 7
    assert config.kafka.embedded.port == 1234
    assert config.kafka.brokers == "embedded"


def test_override_a_nested_leaf(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMALYD_KAFKA__EMBEDDED__PORT", "5555")
    config = parse_config("kafka: {partitions: 2, embedded: {host: localhost, port: 1}}")
    assert (config.kafka.embedded.port, config.kafka.embedded.host) == (5555, "localhost")
    assert config.kafka.partitions == 2


def test_override_a_section_missing_from_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMALYD_APP__LOG_LEVEL", "debug")
    monkeypatch.setenv("ANOMALYD_DELIVERY__MAX_BACKOFF", "5m")
    config = parse_config("http: {port: 0}", environ={})
    assert config.app.log_level == "debug"
    assert config.app.id == "anomalyd"
    assert config.delivery.max_backoff == 300.0
    assert config.http.port == 0


def test_override_a_list_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMALYD_KAFKA__BROKERS", '["k:9092"]')
    assert parse_config("kafka: {brokers: embedded}").kafka.bootstrap == ["k:9092"]


def test_anomalyd_config_variable_is_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMALYD_CONFIG", "/etc/anomalyd/anomalyd.yaml")
    assert parse_config("app: {id: x}").app.id == "x"


def test_a_bad_override_is_a_problem_with_its_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMALYD_KAFKA__PARTITIONS", "many")
    assert paths("{}") == ["kafka.partitions"]


def test_a_bad_override_of_a_union_has_no_tag_in_its_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANOMALYD_KAFKA__BROKERS", "5")
    assert set(paths("{}")) == {"kafka.brokers"}


def test_an_unknown_override_key_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMALYD_APP__BOGUS", "1")
    assert paths("{}") == ["app.bogus"]


# --- strictness ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("bogus: 1", "bogus"),
        ("app: {bogus: 1}", "app.bogus"),
        ("kafka: {embedded: {bogus: 1}}", "kafka.embedded.bogus"),
        ("rules: [{name: a, type: above, threshold: 1, bogus: 1}]", "rules[0].bogus"),
        ("rules: [{name: a, type: absence, for: 1, field: x}]", "rules[0].field"),
        ("rules: [{name: a, type: above, threshold: 1, window: 5}]", "rules[0].window"),
        ("receivers: [{name: a, type: log, url: 'http://x'}]", "receivers[0].url"),
        ("delivery: {retries: 3}", "delivery.retries"),
        ("rules: [{name: a, type: above, threshold: 1, for_: 5}]", "rules[0].for_"),
    ],
)
def test_unknown_keys_anywhere_are_errors(text: str, path: str) -> None:
    [problem] = problems(text)
    assert problem == f"{path}: Extra inputs are not permitted"


def test_many_mistakes_are_all_listed_with_their_paths() -> None:
    text = """
app: {id: 'bad id', bogus: 1}
kafka:
  embedded: {host: 10.0.0.1}
  partitions: 0
rules:
  - {name: a, type: above, threshold: 1}
  - {name: b, type: below}
  - {name: c, type: above, threshold: 1, for: 5q}
  - {name: d, type: zscore, nope: 1}
  - {name: e, type: wat}
  - {name: f, type: absence}
receivers:
  - {type: webhook, name: w, url: ftp://x}
  - {name: nameless}
delivery: {max_attempts: 0}
extra_section: 1
"""
    assert paths(text) == [
        "app.id",
        "app.bogus",
        "kafka.embedded.host",
        "kafka.partitions",
        "rules[1].threshold",
        "rules[2].for",
        "rules[3].nope",
        "rules[4]",
        "rules[5].for",
        "delivery.max_attempts",
        "receivers[0].url",
        "receivers[1]",
        "extra_section",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "kafka: {brokers: 5}",
        "kafka: {brokers: other}",
        "kafka: {brokers: []}",
        "kafka: {brokers: [5]}",
        "kafka: {brokers: {a: 1}}",
        "rules: [{name: a, type: above, threshold: x}]",
        "rules: [{name: a, type: zscore, direction: sideways}]",
        "rules: [{name: a, type: rate_of_change, max_rate: 0}]",
        "receivers: [{name: a, type: webhook, url: 'http://x', timeout: 0}]",
        "kafka: {session_timeout: 5q}",
    ],
)
def test_no_union_tag_in_paths(text: str) -> None:
    for path in paths(text):
        assert path.split(".")[0] in {"kafka", "rules[0]", "receivers[0]"}
        for tag in ("literal[", "list[", "function-", "above", "zscore", "webhook", "float"):
            assert tag not in path, path


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("kafka: {brokers: 5}", "kafka.brokers"),
        ("kafka: {brokers: [nohost]}", "kafka.brokers"),
        ("kafka: {brokers: [5]}", "kafka.brokers[0]"),
        ("rules: [{name: a, type: above, threshold: x}]", "rules[0].threshold"),
        ("rules: [{name: a, type: below, threshold: 1, clear_threshold: 0}]", "rules[0]"),
        ("receivers: [{name: a, type: webhook, url: x}]", "receivers[0].url"),
        (
            "receivers: [{name: a, type: webhook, url: 'http://x', headers: {a: 1}}]",
            "receivers[0].headers.a",
        ),
    ],
)
def test_paths_are_as_the_user_wrote_them(text: str, path: str) -> None:
    assert path in paths(text)


# --- checks -------------------------------------------------------------------------------------


def test_duplicate_rule_names_are_rejected() -> None:
    listed = problems(
        "rules: [{name: a, type: above, threshold: 1}, {name: b, type: absence, for: 1},"
        " {name: a, type: below, threshold: 1}]"
    )
    assert listed == ["(top level): Value error, rule names must be unique; repeated: a"]


def test_duplicate_receiver_names_are_rejected() -> None:
    listed = problems("receivers: [{name: a, type: log}, {name: a, type: log}]")
    assert listed == ["(top level): Value error, receiver names must be unique; repeated: a"]


def test_same_name_for_a_rule_and_a_receiver_is_fine() -> None:
    config = parse_config(
        "rules: [{name: a, type: above, threshold: 1}]\nreceivers: [{name: a, type: log}]",
        environ={},
    )
    assert config.rules[0].name == config.receivers[0].name == "a"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "localhost"])
def test_embedded_host_loopback_is_accepted(host: str) -> None:
    config = parse_config(f"kafka: {{embedded: {{host: '{host}'}}}}", environ={})
    assert config.kafka.embedded.host == host


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.1", "::", "example.com", "", "LOCALHOST."])
def test_embedded_host_must_be_loopback(host: str) -> None:
    assert paths(f"kafka: {{embedded: {{host: '{host}'}}}}") == ["kafka.embedded.host"]


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("topics: {events: x, alerts: x}", "topics"),
        ("delivery: {initial_backoff: 10s, max_backoff: 1s}", "delivery"),
        ("rules: [{name: a, type: above, threshold: 5, clear_threshold: 6}]", "rules[0]"),
        ("rules: [{name: a, type: above, threshold: .nan}]", "rules[0].threshold"),
        ("rules: [{name: a, type: above, threshold: .inf}]", "rules[0].threshold"),
        ("rules: [{name: a, type: absence, for: 0}]", "rules[0].for"),
        ("rules: [{name: 'bad name', type: above, threshold: 1}]", "rules[0].name"),
        ("rules: [{name: a, type: above, threshold: 1, streams: []}]", "rules[0].streams"),
        ("rules: [{name: a, type: zscore, window: 1}]", "rules[0].window"),
        ("rules: [{name: a, type: zscore, min_samples: 1}]", "rules[0].min_samples"),
        ("rules: [{name: a, type: above, threshold: 1, severity: page}]", "rules[0].severity"),
        (
            "rules: [{name: a, type: above, threshold: 1, summary: '" + "x" * 501 + "'}]",
            "rules[0].summary",
        ),
        ("ingest: {max_event_bytes: 10}", "ingest.max_event_bytes"),
        ("http: {port: 70000}", "http.port"),
        ("app: {log_level: loud}", "app.log_level"),
        ("rules: {name: a}", "rules"),
        ("app: 5", "app"),
    ],
)
def test_range_and_cross_checks(text: str, path: str) -> None:
    assert paths(text) == [path]


# --- durations ----------------------------------------------------------------------------------

DURATIONS = [
    ("250ms", 0.25),
    ("30s", 30.0),
    ("5m", 300.0),
    ("1h", 3600.0),
    ("1h30m", 5400.0),
    ("1d", 86400.0),
    ("1w", 604800.0),
    ("1h30m15s500ms", 5415.5),
    ("1.5s", 1.5),
    ("0s", 0.0),
    (" 5m ", 300.0),
    ("90", 90.0),
    ("0.5", 0.5),
    (0, 0.0),
    (5, 5.0),
    (2.5, 2.5),
]


@pytest.mark.parametrize(("raw", "seconds"), DURATIONS)
def test_parse_duration(raw: object, seconds: float) -> None:
    assert parse_duration(raw) == seconds


@pytest.mark.parametrize(
    "raw",
    [
        "5q",
        "",
        "s",
        "-5s",
        "-1",
        -1,
        -0.5,
        True,
        False,
        None,
        [5],
        {"s": 5},
        float("inf"),
        float("nan"),
        "inf",
        "nan",
        "5 m",
        "5m 30s",
        "m5",
        "5mm",
        "1h30",
        ".5s",
        "5S",
        "1e400",
    ],
)
def test_parse_duration_rejects(raw: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is checked in the next test
        parse_duration(raw)


def test_parse_duration_explains_the_format() -> None:
    with pytest.raises(ValueError, match="'5q' is not a duration"):
        parse_duration("5q")


@given(st.integers(min_value=0, max_value=2**53))
def test_integer_seconds_with_unit_parse_to_themselves(n: int) -> None:
    assert parse_duration(f"{n}s") == n
    assert parse_duration(f"{n}") == n
    assert parse_duration(n) == n


@given(st.integers(0, 10**6), st.integers(0, 999))
def test_decimal_seconds_parse(whole: int, millis: int) -> None:
    assert parse_duration(f"{whole}.{millis:03d}s") == pytest.approx(whole + millis / 1000)


@given(st.lists(st.tuples(st.integers(0, 1000), st.sampled_from(["ms", "s", "m", "h", "d", "w"]))))
def test_compound_durations_sum(parts: list[tuple[int, str]]) -> None:
    unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = "".join(f"{n}{u}" for n, u in parts)
    if not parts:
        with pytest.raises(ValueError):  # noqa: PT011
            parse_duration(text)
        return
    assert parse_duration(text) == pytest.approx(sum(n * unit[u] for n, u in parts))


@given(st.one_of(st.text(max_size=12), st.floats(), st.integers()))
def test_parse_duration_is_a_number_or_a_value_error(raw: object) -> None:
    try:
        seconds = parse_duration(raw)
    except ValueError:
        return
    assert 0 <= seconds < float("inf")
