"""Alert identity and content (fingerprints, summaries) and Alertmanager's webhook v4
payload, with the Alert JSON round trip."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from anomalyd.alert import alert_url, fingerprint, firing, render_summary, resolved
from anomalyd.config.routing import Route
from anomalyd.domain import ZERO_TIME, Alert, AlertStatus, format_time, parse_time
from anomalyd.notify.notification import Notification
from anomalyd.notify.payload import notification_payload
from anomalyd.notify.route import build_tree, group_key, group_labels

URL = "http://anomalyd.test:6066"
T0 = 1_700_000_000.0

# --- fingerprint --------------------------------------------------------------------------------

# Values from prometheus/common model/signature_test.go (LabelsToSignature and
# labelSetToFingerprint share the algorithm), so our ids match Alertmanager's.
KNOWN = [
    ({}, 14695981039346656037),
    ({"name": "garland, briggs", "fear": "love is not enough"}, 5799056148416392346),
    ({"first-label": "first-label-value"}, 5146282821936882169),
    (
        {"first-label": "first-label-value", "second-label": "second-label-value"},
        3195800080984914717,
    ),
    (
        {
            "first-label": "first-label-value",
            "second-label": "second-label-value",
            "third-label": "third-label-value",
        },
        13843036195897128121,
    ),
]


@pytest.mark.parametrize(("labels", "expected"), KNOWN)
def test_fingerprint_matches_prometheus(labels: dict[str, str], expected: int) -> None:
    assert fingerprint(labels) == f"{expected:016x}"


def test_empty_label_set_is_the_fnv_offset_basis() -> None:
    assert fingerprint({}) == "cbf29ce484222325"


def test_fingerprint_is_16_hex_digits_with_leading_zeros() -> None:
    for i in range(200):
        fp = fingerprint({"i": str(i)})
        assert len(fp) == 16
        assert int(fp, 16) >= 0


_LABELS = st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=10), max_size=8)


@given(_LABELS, st.randoms())
def test_fingerprint_ignores_order(labels: dict[str, str], rnd: Any) -> None:
    items = list(labels.items())
    rnd.shuffle(items)
    assert fingerprint(dict(items)) == fingerprint(labels)


@given(_LABELS, _LABELS)
def test_different_label_sets_differ(a: dict[str, str], b: dict[str, str]) -> None:
    if a != b:
        assert fingerprint(a) != fingerprint(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"a": "bc"}, {"ab": "c"}),  # the separator keeps name and value apart
        ({"a": "b", "c": "d"}, {"a": "b\xffc", "d": ""}),
        ({"a": ""}, {}),
        ({"a": "x"}, {"a": "X"}),
        ({"alertname": "x", "stream": "s"}, {"alertname": "s", "stream": "x"}),
    ],
)
def test_near_misses_differ(a: dict[str, str], b: dict[str, str]) -> None:
    assert fingerprint(a) != fingerprint(b)


# --- summaries ----------------------------------------------------------------------------------

SUMMARY_CASES = [
    ("{stream}: {reason}", {"stream": "cpu", "reason": "high"}, "cpu: high"),
    ("{a}{a}", {"a": "x"}, "xx"),
    ("{missing} stays", {}, "{missing} stays"),
    ("{0.__class__}", {"0": "zero"}, "{0.__class__}"),
    ("{stream.__class__.__mro__}", {"stream": "cpu"}, "{stream.__class__.__mro__}"),
    ("{stream[0]}", {"stream": "cpu"}, "{stream[0]}"),
    ("{stream!r}", {"stream": "cpu"}, "{stream!r}"),
    ("{stream:>10}", {"stream": "cpu"}, "{stream:>10}"),
    ("{}", {"": "empty"}, "{}"),
    ("{{stream}}", {"stream": "cpu"}, "{cpu}"),
    ("{ stream }", {"stream": "cpu"}, "{ stream }"),
    ("{a}", {"a": "{b}", "b": "no"}, "{b}"),  # values are not expanded again
    ("%(a)s $a ${a}", {"a": "x"}, "%(a)s $a $x"),  # only {name} is a placeholder
    ("unbalanced { and }", {}, "unbalanced { and }"),
]


@pytest.mark.parametrize(("template", "values", "expected"), SUMMARY_CASES)
def test_render_summary(template: str, values: dict[str, str], expected: str) -> None:
    assert render_summary(template, values) == expected


@given(st.text(max_size=60), st.dictionaries(st.text(max_size=5), st.text(max_size=5)))
def test_render_summary_never_fails(template: str, values: dict[str, str]) -> None:
    out = render_summary(template, values)
    assert isinstance(out, str)
    if "{" not in template:
        assert out == template


# --- alerts -------------------------------------------------------------------------------------


def make_alert(labels: dict[str, str] | None = None, **kw: Any) -> Alert:
    labels = {"alertname": "high", "stream": "cpu"} if labels is None else labels
    annotations = kw.pop("annotations", {"summary": "cpu is high"})
    return firing(labels, annotations, kw.pop("starts_at", T0), URL)


def test_firing_alert() -> None:
    alert = make_alert()
    assert alert.status is AlertStatus.FIRING
    assert alert.fingerprint == fingerprint({"alertname": "high", "stream": "cpu"})
    assert alert.generator_url == f"{URL}/api/alerts/{alert.fingerprint}"
    assert alert.ends_at is None


def test_alerts_copy_their_labels() -> None:
    labels = {"alertname": "high"}
    alert = firing(labels, {}, T0, URL)
    labels["alertname"] = "changed"
    assert alert.labels == {"alertname": "high"}


@pytest.mark.parametrize("external", [URL, URL + "/", URL + "//"])
def test_alert_url_has_one_slash(external: str) -> None:
    assert alert_url(external, "abc") == f"{URL}/api/alerts/abc"


def test_resolved_keeps_identity() -> None:
    alert = make_alert()
    ended = resolved(alert, ends_at=T0 + 60)
    assert ended.status is AlertStatus.RESOLVED
    assert (ended.labels, ended.fingerprint, ended.starts_at, ended.generator_url) == (
        alert.labels,
        alert.fingerprint,
        alert.starts_at,
        alert.generator_url,
    )
    assert ended.annotations == alert.annotations
    assert ended.ends_at == T0 + 60
    assert resolved(alert, T0 + 60, {"summary": "ok"}).annotations == {"summary": "ok"}


def test_alert_json_shape() -> None:
    alert = make_alert(starts_at=T0 + 0.25)
    assert alert.to_json() == {
        "status": "firing",
        "labels": {"alertname": "high", "stream": "cpu"},
        "annotations": {"summary": "cpu is high"},
        "startsAt": "2023-11-14T22:13:20.250Z",
        "endsAt": ZERO_TIME,
        "generatorURL": alert.generator_url,
        "fingerprint": alert.fingerprint,
    }
    assert ZERO_TIME == "0001-01-01T00:00:00Z"
    ended = resolved(alert, ends_at=T0 + 90).to_json()
    assert ended["status"] == "resolved"
    assert ended["endsAt"] == "2023-11-14T22:14:50.000Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-11-14T22:13:20Z", T0),
        ("2023-11-14T22:13:20.250Z", T0 + 0.25),
        ("2023-11-15T00:13:20+02:00", T0),
        ("1970-01-01T00:00:00Z", 0.0),
    ],
)
def test_parse_time(text: str, expected: float) -> None:
    assert parse_time(text) == expected


def test_format_time_is_utc_with_milliseconds() -> None:
    assert format_time(0) == "1970-01-01T00:00:00.000Z"
    assert format_time(T0 + 0.001) == "2023-11-14T22:13:20.001Z"


_MILLIS = st.integers(0, 7_258_118_400_000).map(lambda ms: ms / 1000.0)
_TEXT = st.text(max_size=12)


@given(
    labels=st.dictionaries(_TEXT, _TEXT, max_size=5),
    annotations=st.dictionaries(_TEXT, _TEXT, max_size=5),
    starts_at=_MILLIS,
    ends_at=st.one_of(st.none(), _MILLIS),
    url=_TEXT,
)
def test_alert_json_round_trip(
    labels: dict[str, str],
    annotations: dict[str, str],
    starts_at: float,
    ends_at: float | None,
    url: str,
) -> None:
    alert = Alert(
        labels=labels,
        annotations=annotations,
        status=AlertStatus.FIRING if ends_at is None else AlertStatus.RESOLVED,
        starts_at=starts_at,
        fingerprint=fingerprint(labels),
        generator_url=url,
        ends_at=ends_at,
    )
    # through real JSON, as it travels on the alerts topic
    assert Alert.from_json(orjson.loads(orjson.dumps(alert.to_json()))) == alert


def test_from_json_defaults() -> None:
    alert = Alert.from_json(
        {
            "labels": {"a": "b"},
            "status": "firing",
            "startsAt": "2023-11-14T22:13:20Z",
            "fingerprint": 1,
        }
    )
    assert alert.annotations == {}
    assert alert.generator_url == ""
    assert alert.ends_at is None
    assert alert.fingerprint == "1"


# --- the webhook payload ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({}, "{}:{}"),
        ({"alertname": "high"}, '{}:{alertname="high"}'),
        ({"stream": "cpu", "alertname": "high"}, '{}:{alertname="high", stream="cpu"}'),
        # Quoted as Go's %q: a label value cannot close the quote or add a pair.
        ({"alertname": 'a", x="y'}, '{}:{alertname="a\\", x=\\"y"}'),
        ({"alertname": "back\\slash\nline"}, '{}:{alertname="back\\\\slash\\nline"}'),
    ],
)
def test_group_key(labels: dict[str, str], expected: str) -> None:
    assert group_key(build_tree(Route(receiver="team")), labels) == expected


def webhook_payload(
    receiver: str,
    alerts: list[Alert],
    url: str,
    group_by: tuple[str, ...] = ("alertname", "stream"),
) -> dict[str, Any]:
    """The v4 body for `alerts` grouped on a root route with `group_by`, as delivery builds it."""
    node = build_tree(Route(receiver=receiver, group_by=list(group_by)))
    labels = group_labels(node, alerts[0].labels) if alerts else {}
    notification = Notification(receiver, group_key(node, labels), labels, tuple(alerts), "id")
    return notification_payload(notification, url)


def test_payload_shape() -> None:
    alert = make_alert({"alertname": "high", "stream": "cpu", "host": "h1"})
    body = webhook_payload("team", [alert], URL)
    assert body == {
        "version": "4",
        "groupKey": '{}:{alertname="high", stream="cpu"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "team",
        "groupLabels": {"alertname": "high", "stream": "cpu"},
        "commonLabels": {"alertname": "high", "stream": "cpu", "host": "h1"},
        "commonAnnotations": {"summary": "cpu is high"},
        "externalURL": URL,
        "alerts": [alert.to_json()],
    }
    orjson.dumps(body)  # serialisable as is


def test_payload_common_labels_and_annotations_are_the_intersection() -> None:
    a = make_alert(
        {"alertname": "high", "stream": "cpu", "host": "h1", "dc": "eu"},
        annotations={"summary": "one", "runbook": "r"},
    )
    b = make_alert(
        {"alertname": "high", "stream": "cpu", "host": "h2", "dc": "eu"},
        annotations={"summary": "two", "runbook": "r"},
    )
    c = make_alert(
        {"alertname": "high", "stream": "cpu", "host": "h1"},
        annotations={"runbook": "r"},
    )
    body = webhook_payload("team", [a, b, c], URL)
    assert body["commonLabels"] == {"alertname": "high", "stream": "cpu"}
    assert body["commonAnnotations"] == {"runbook": "r"}
    assert len(body["alerts"]) == 3


def test_payload_group_labels_only_those_present() -> None:
    alert = make_alert({"alertname": "high"})
    body = webhook_payload("team", [alert], URL)
    assert body["groupLabels"] == {"alertname": "high"}
    assert body["groupKey"] == '{}:{alertname="high"}'
    by_host = webhook_payload("team", [make_alert({"host": "h"})], URL, group_by=("host",))
    assert by_host["groupKey"] == '{}:{host="h"}'


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["firing"], "firing"),
        (["resolved"], "resolved"),
        (["resolved", "resolved"], "resolved"),
        (["resolved", "firing"], "firing"),
        (["firing", "resolved"], "firing"),
    ],
)
def test_payload_status_is_resolved_only_when_all_are(statuses: list[str], expected: str) -> None:
    alerts = [
        make_alert() if status == "firing" else resolved(make_alert(), T0 + 1)
        for status in statuses
    ]
    assert webhook_payload("team", alerts, URL)["status"] == expected


def test_payload_needs_an_alert() -> None:
    with pytest.raises(ValueError, match="at least one alert"):
        webhook_payload("team", [], URL)
