"""Routing config: matchers written as in Alertmanager (a table, and a property: printing
then parsing gives the matcher back), and the route / inhibit / silence sections with
their cross references reported by path."""

from __future__ import annotations

import re
import time

import pytest
import re2
from hypothesis import given
from hypothesis import strategies as st

from anomalyd.config import ConfigError, parse_config
from anomalyd.config.matchers import Matcher, MatchOp, coerce_matcher, parse_matcher
from anomalyd.config.routing import Route, Silence, default_route, parse_timestamp

# --- matchers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('severity="critical"', Matcher("severity", MatchOp.EQUAL, "critical")),
        ("severity=critical", Matcher("severity", MatchOp.EQUAL, "critical")),
        ('  region != "us"  ', Matcher("region", MatchOp.NOT_EQUAL, "us")),
        ('stream=~"checkout\\\\..*"', Matcher("stream", MatchOp.REGEX, "checkout\\..*")),
        ('team!~"x|y"', Matcher("team", MatchOp.NOT_REGEX, "x|y")),
        ("team!~x|y", Matcher("team", MatchOp.NOT_REGEX, "x|y")),
        ('empty=""', Matcher("empty", MatchOp.EQUAL, "")),
        ('q="say \\"hi\\"\\n"', Matcher("q", MatchOp.EQUAL, 'say "hi"\n')),
        ('u="\\u00e9\\x41"', Matcher("u", MatchOp.EQUAL, "éA")),
        ('eq="a=b"', Matcher("eq", MatchOp.EQUAL, "a=b")),
    ],
)
def test_parse_matcher(text: str, expected: Matcher) -> None:
    assert parse_matcher(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("severity", "is not a matcher"),
        ('="x"', "is not a matcher"),
        ('1abc="x"', "is not a matcher"),
        ('sev=="x"', "must be quoted"),
        ('a="unterminated', "no closing quote"),
        ('a="in"side"', "unescaped quote"),
        ('a="bad \\q escape"', "invalid escape"),
        ("a=two words", "must be quoted"),
        ('a=~"("', "invalid regular expression"),
    ],
)
def test_parse_matcher_rejects(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_matcher(text)


label_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)
equality_ops = st.sampled_from([MatchOp.EQUAL, MatchOp.NOT_EQUAL])


@given(label_names, equality_ops, st.text(max_size=40))
def test_printing_then_parsing_gives_the_matcher_back(name: str, op: MatchOp, value: str) -> None:
    matcher = Matcher(name, op, value)
    assert parse_matcher(str(matcher)) == matcher


regex_ops = st.sampled_from([MatchOp.REGEX, MatchOp.NOT_REGEX])
QUIET = re2.Options()
QUIET.log_errors = False


@given(label_names, regex_ops, st.from_regex(r"[a-z.*|()\\\"]{0,12}", fullmatch=True))
def test_regex_matchers_round_trip_or_are_rejected(name: str, op: MatchOp, value: str) -> None:
    matcher = Matcher(name, op, value)
    try:
        re2.compile(value, QUIET)
    except re2.error:
        with pytest.raises(ValueError, match="invalid regular expression"):
            parse_matcher(str(matcher))
        return
    assert parse_matcher(str(matcher)) == matcher


@pytest.mark.parametrize(
    ("matcher", "labels", "expected"),
    [
        ('severity="critical"', {"severity": "critical"}, True),
        ('severity="critical"', {"severity": "warning"}, False),
        ('severity="critical"', {}, False),
        ('region!="us"', {"region": "eu"}, True),
        ('region!="us"', {}, True),  # a missing label is the empty string
        ('region=""', {}, True),
        ('region=""', {"region": "eu"}, False),
        ('stream=~"checkout\\\\..*"', {"stream": "checkout.latency_ms"}, True),
        ('stream=~"checkout\\\\..*"', {"stream": "checkoutXlatency"}, False),
        ('stream=~"checkout"', {"stream": "checkout.latency_ms"}, False),  # anchored
        ('stream=~"check"', {"stream": "precheck"}, False),  # anchored at the start too
        ('team!~"x|y"', {"team": "z"}, True),
        ('team!~"x|y"', {"team": "y"}, False),
        ('team!~"x|y"', {}, True),
        ('a=~".*"', {}, True),
        ('a=~".+"', {}, False),
    ],
)
def test_matching(matcher: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_matcher(matcher).matches(labels) is expected


def test_a_backtracking_pattern_matches_in_linear_time() -> None:
    # Python's re tries every split of the letters among the groups: 2^25 ways here,
    # seconds of a frozen event loop (32 letters: minutes). RE2 is linear in the value.
    matcher = parse_matcher('team=~"([a-z]+)*-prod"')
    started = time.perf_counter()
    assert not matcher.matches({"team": "a" * 25})
    assert time.perf_counter() - started < 0.05
    assert matcher.matches({"team": "core-prod"})


def test_a_long_matcher_text_is_read_in_linear_time() -> None:
    text = 'a="' + " " * 60_000 + 'x" ' + " " * 60_000 + "y"  # 9 s with a backtracking parse
    started = time.perf_counter()
    with pytest.raises(ValueError, match="quote"):
        parse_matcher(text)
    assert time.perf_counter() - started < 0.05


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('team=~"(a)\\\\1"', "invalid escape sequence"),  # a backreference
        ('team=~"(?=a)a"', "invalid perl operator"),  # lookahead
        ('team!~"(?<!a)b"', "invalid perl operator"),  # lookbehind
    ],
)
def test_what_re2_refuses_is_refused_when_read(
    text: str, why: str, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match="invalid regular expression") as caught:
        parse_matcher(text)
    message = str(caught.value)
    assert message.startswith(f"{text}: "), "the error names the matcher"
    assert why in message
    assert "RE2" in message
    assert capfd.readouterr().err == "", "RE2 prints nothing of its own: the error says it"


def test_a_lone_surrogate_neither_crashes_a_pattern_nor_a_match() -> None:
    with pytest.raises(ValueError, match="not valid Unicode"):
        parse_matcher('a=~"\\ud800"')  # Go's \u escape: a surrogate, not a character
    assert parse_matcher('a=~"x.*"').matches({"a": "x\ud800"})


def test_the_api_object_form() -> None:
    assert coerce_matcher({"name": "a", "value": "b", "isRegex": True, "isEqual": False}) == (
        Matcher("a", MatchOp.NOT_REGEX, "b")
    )
    assert coerce_matcher({"name": "a", "value": "b"}) == Matcher("a", MatchOp.EQUAL, "b")
    for op in MatchOp:
        matcher = Matcher("a", op, "b")
        assert coerce_matcher(matcher.to_api()) == matcher
    with pytest.raises(ValueError, match="label name"):
        coerce_matcher({"name": "0", "value": "b"})


# --- timestamps ---------------------------------------------------------------------------------


def test_timestamps() -> None:
    assert parse_timestamp("1970-01-01T00:01:00Z") == 60.0
    assert parse_timestamp("1970-01-01T01:01:00+01:00") == 60.0
    assert parse_timestamp(60) == 60.0
    with pytest.raises(ValueError, match="time zone"):
        parse_timestamp("2026-01-01T00:00:00")
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_timestamp("yesterday")
    assert parse_timestamp("9999-12-31T23:59:59Z") == 253_402_300_799.0
    for far in (1e300, float("nan"), float("inf"), 10**400, -1, "9999-12-31T23:59:59-01:00"):
        with pytest.raises(ValueError, match="out of range"):
            parse_timestamp(far)


# --- the config sections ------------------------------------------------------------------------


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, environ={})
    return caught.value.problems


RECEIVERS = """
receivers:
  - {name: pager, type: log}
  - {name: tickets, type: log}
"""


def test_a_routing_tree_loads() -> None:
    config = parse_config(
        RECEIVERS
        + """
route:
  receiver: tickets
  group_by: [alertname]
  group_wait: 5s
  routes:
    - receiver: pager
      matchers: ['severity="critical"', 'stream=~"checkout\\\\..*"']
      continue: true
      group_by: ['...']
inhibit_rules:
  - source_matchers: [alertname=StreamSilent]
    target_matchers: ['severity!="critical"']
    equal: [stream]
silences:
  - matchers: ['stream="search.latency_ms"']
    endsAt: 2030-01-01T00:00:00Z
    comment: search is being migrated
    createdBy: ops
""",
        environ={},
    )
    assert config.route is not None
    assert config.route.group_wait == 5.0
    [child] = config.route.routes
    assert child.continue_
    assert child.group_by == ["..."]
    assert [str(m) for m in child.matchers] == ['severity="critical"', 'stream=~"checkout\\\\..*"']
    [rule] = config.inhibit_rules
    assert rule.equal == ["stream"]
    [silence] = config.silences
    assert silence.ends_at == parse_timestamp("2030-01-01T00:00:00Z")
    assert silence.created_by == "ops"
    assert silence.stable_id().startswith("config-")


@pytest.mark.parametrize(
    ("section", "path"),
    [
        ("route: {receiver: nobody}", "route.receiver"),
        (
            "route: {receiver: pager, routes: [{receiver: pager}, {receiver: gone}]}",
            "route.routes[1].receiver",
        ),
        (
            "route: {receiver: pager, routes: [{routes: [{receiver: gone}]}]}",
            "route.routes[0].routes[0].receiver",
        ),
        ("route: {group_wait: 1s}", "route.receiver"),
        ("route: {receiver: pager, matchers: [a=b]}", "route.matchers"),
        ("route: {receiver: pager, continue: true}", "route.continue"),
        ("route: {receiver: pager, group_by: [a, '...']}", "route.group_by"),
        ("route: {receiver: pager, group_by: [a, a]}", "route.group_by"),
        ("route: {receiver: pager, group_by: ['not-a-label']}", "route.group_by"),
        ("route: {receiver: pager, group_interval: 0s}", "route.group_interval"),
        (
            "route: {receiver: pager, routes: [{matchers: ['a=~\"(\"']}]}",
            "route.routes[0].matchers[0]",
        ),
        ("route: {receiver: pager, mystery: 1}", "route.mystery"),
        (
            "inhibit_rules: [{source_matchers: [], target_matchers: [a=b]}]",
            "inhibit_rules[0].source_matchers",
        ),
        (
            "inhibit_rules: [{source_matchers: [a=b], target_matchers: [a=c], equal: ['1x']}]",
            "inhibit_rules[0].equal",
        ),
        ("silences: [{matchers: []}]", "silences[0].matchers"),
        ("silences: [{matchers: ['team=~\"(a)\\\\1\"']}]", "silences[0].matchers[0]"),
        (
            "inhibit_rules: [{source_matchers: [a=b], target_matchers: ['t=~\"(?!x).*\"']}]",
            "inhibit_rules[0].target_matchers[0]",
        ),
        (
            "silences: [{matchers: [a=b], startsAt: 2030-01-02T00:00:00Z,"
            " endsAt: 2030-01-01T00:00:00Z}]",
            "silences[0]",
        ),
        ("silences: [{matchers: [a=b], endsAt: tomorrow}]", "silences[0].endsAt"),
        ("silences: [{matchers: [a=b], id: x}, {matchers: [a=c], id: x}]", "silences[1].id"),
    ],
)
def test_problems_are_reported_with_their_path(section: str, path: str) -> None:
    found = problems(RECEIVERS + section)
    assert [p.split(": ", 1)[0] for p in found] == [path], found


def test_every_unknown_receiver_is_listed() -> None:
    found = problems(
        RECEIVERS
        + "route: {receiver: a, routes: [{receiver: pager},"
        + " {receiver: b, routes: [{receiver: c}]}]}"
    )
    assert [p.split(": ", 1)[0] for p in found] == [
        "route.receiver",
        "route.routes[1].receiver",
        "route.routes[1].routes[0].receiver",
    ]
    assert "receiver 'a' is not defined (receivers: pager, tickets)" in found[0]


def test_the_api_token_is_secret_and_empty_means_unset() -> None:
    config = parse_config("http: {api_token: s3cret}", environ={})
    assert config.http.api_token is not None
    assert config.http.api_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(config)
    unset = parse_config("http: {api_token: '${ANOMALYD_API_TOKEN:-}'}", environ={})
    assert unset.http.api_token is None


def test_default_route() -> None:
    assert default_route([]) is None
    one = default_route(["console"])
    assert one == Route(
        receiver="console", group_by=["alertname", "stream"], group_wait=0.0, group_interval=1.0
    )
    two = default_route(["a", "b"])
    assert two is not None
    assert [(r.receiver, r.continue_) for r in two.routes] == [("a", True), ("b", True)]


def test_silence_json_round_trip() -> None:
    silence = Silence.model_validate(
        {"id": "s1", "matchers": ['a=~"x|y"'], "startsAt": 10, "endsAt": 20, "comment": "c"}
    )
    dumped = silence.model_dump(mode="json", by_alias=True)
    assert dumped["matchers"] == ['a=~"x|y"']
    assert dumped["startsAt"] == "1970-01-01T00:00:10.000Z"
    assert Silence.model_validate(dumped) == silence
