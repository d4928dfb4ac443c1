"""Email content from Jinja2 templates, rendered in a sandbox.

Templates come from the config and alert text comes from events, so neither may
reach Python internals: rendering uses Jinja2's ImmutableSandboxedEnvironment.
The HTML part escapes every value; the subject is forced onto one line.

Templates see (snake_case, like the webhook payload): `receiver`, `status`
(firing|resolved), `alerts`, `firing`, `resolved` (lists of alerts), `group_key`,
`group_labels`, `common_labels`, `common_annotations`, `external_url`,
`notification_id`. Each alert has `status`, `labels`, `annotations`, `starts_at`,
`ends_at` (RFC 3339, or empty while firing), `generator_url`, `fingerprint`. With
`http.feedback_secret` set, the annotations hold the feedback links
`feedback_true_positive` and `feedback_false_positive` (`notify/links.py`); the default
bodies show them as links rather than among the annotations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from anomalyd.domain import ZERO_TIME, Alert, AlertStatus
from anomalyd.notify.notification import Notification
from anomalyd.notify.payload import notification_payload

#: The longest subject we send; longer ones are cut with an ellipsis.
MAX_SUBJECT = 250
#: Everything str.splitlines() breaks on, and the other control characters.
_NOT_ONE_LINE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")

DEFAULT_SUBJECT = (
    "[{{ status|upper }}{% if status == 'firing' %}:{{ firing|length }}{% endif %}]"
    " {% for name, value in group_labels|dictsort %}{{ value }} {% endfor %}"
)

DEFAULT_TEXT = """\
{% set _SHOWN = ["summary", "description", "feedback_true_positive", "feedback_false_positive"] %}
{{ firing|length }} firing, {{ resolved|length }} resolved ({{ receiver }})
{% for alert in alerts %}

[{{ alert.status|upper }}] {{ alert.annotations.summary or alert.labels.alertname }}
{% if alert.annotations.description %}
{{ alert.annotations.description }}
{% endif %}
Started: {{ alert.starts_at }}
{% if alert.ends_at %}
Ended:   {{ alert.ends_at }}
{% endif %}
Labels:
{% for name, value in alert.labels|dictsort %}
  {{ name }} = {{ value }}
{% endfor %}
{% set details = alert.annotations|dictsort|rejectattr("0", "in", _SHOWN)|list %}
{% if details %}
Annotations:
{% for name, value in details %}
  {{ name }} = {{ value }}
{% endfor %}
{% endif %}
{% if alert.generator_url %}
Link: {{ alert.generator_url }}
{% endif %}
{% if alert.annotations.feedback_true_positive %}
Was this alert right?
  Yes: {{ alert.annotations.feedback_true_positive }}
  No, a false positive: {{ alert.annotations.feedback_false_positive }}
{% endif %}
{% endfor %}

Sent by anomalyd: {{ external_url }}
"""

DEFAULT_HTML = """\
{% set _SHOWN = ["summary", "description", "feedback_true_positive", "feedback_false_positive"] %}
<!DOCTYPE html>
<html><body style="font-family: sans-serif; font-size: 14px;">
<h2 style="margin: 0 0 8px 0;">{{ firing|length }} firing, {{ resolved|length }} resolved</h2>
{% for alert in alerts %}
<table style="border-collapse: collapse; margin: 12px 0; width: 100%; max-width: 720px;">
<tr><th colspan="2" style="text-align: left; padding: 6px; color: #fff; background:
{%- if alert.status == 'firing' %} #c62828{% else %} #2e7d32{% endif %};">
[{{ alert.status|upper }}] {{ alert.annotations.summary or alert.labels.alertname }}</th></tr>
{% if alert.annotations.description %}
<tr><td colspan="2" style="padding: 6px;">{{ alert.annotations.description }}</td></tr>
{% endif %}
<tr><td style="padding: 2px 6px; color: #555;">started</td><td>{{ alert.starts_at }}</td></tr>
{% if alert.ends_at %}
<tr><td style="padding: 2px 6px; color: #555;">ended</td><td>{{ alert.ends_at }}</td></tr>
{% endif %}
{% for name, value in alert.labels|dictsort %}
<tr><td style="padding: 2px 6px; color: #555;">{{ name }}</td><td><code>{{ value }}</code></td></tr>
{% endfor %}
{% for name, value in alert.annotations|dictsort|rejectattr("0", "in", _SHOWN) %}
<tr><td style="padding: 2px 6px; color: #555;">{{ name }}</td><td>{{ value }}</td></tr>
{% endfor %}
{% if alert.generator_url %}
<tr><td colspan="2" style="padding: 6px;">
<a href="{{ alert.generator_url }}">Open in anomalyd</a></td></tr>
{% endif %}
{% if alert.annotations.feedback_true_positive %}
<tr><td colspan="2" style="padding: 6px;">Was this alert right?
<a href="{{ alert.annotations.feedback_true_positive }}">Yes</a> &middot;
<a href="{{ alert.annotations.feedback_false_positive }}">No, a false positive</a></td></tr>
{% endif %}
</table>
{% endfor %}
<p style="color: #777;">Sent by <a href="{{ external_url }}">anomalyd</a> to {{ receiver }}.</p>
</body></html>
"""


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


#: The parts of an email and whether their values are HTML-escaped.
PARTS = {"subject": False, "text": False, "html": True}


def compile_template(
    part: str, source: str | None, undefined: type[Undefined] = Undefined
) -> Template:
    """One part's template (its default when `source` is None), compiled as a receiver
    compiles it; raises jinja2.TemplateError (syntax, an unknown filter or test)."""
    environment = ImmutableSandboxedEnvironment(
        autoescape=PARTS[part], trim_blocks=True, undefined=undefined
    )
    defaults = {"subject": DEFAULT_SUBJECT, "text": DEFAULT_TEXT, "html": DEFAULT_HTML}
    return environment.from_string(source or defaults[part])


class EmailTemplates:
    """The three templates of one receiver, compiled once."""

    def __init__(
        self, subject: str | None = None, text: str | None = None, html: str | None = None
    ) -> None:
        self._subject = compile_template("subject", subject)
        self._text = compile_template("text", text)
        self._html = compile_template("html", html)

    def render(self, notification: Notification, external_url: str) -> RenderedEmail:
        """Render all three parts; raises what Jinja2 raises on a broken template."""
        context = template_context(notification, external_url)
        return RenderedEmail(
            subject=one_line(self._subject.render(context)),
            text=self._text.render(context),
            html=self._html.render(context),
        )


def template_problems(sources: dict[str, str | None], external_url: str) -> dict[str, str]:
    """Why each part (`subject`, `text`, `html`) would fail at delivery, by part.

    Each template is compiled as the receiver compiles it, then rendered against sample
    notifications (firing, resolved, both) with StrictUndefined: a misspelled variable
    (`alrts`, `alert.startsat`) is a problem here instead of a dead letter per
    notification. Labels and annotations are the user's own and vary per alert, so any
    key of theirs renders (as a placeholder)."""
    problems: dict[str, str] = {}
    for part, source in sources.items():
        try:
            template = compile_template(part, source, StrictUndefined)
        except TemplateError as error:
            problems[part] = f"the template does not compile: {_jinja_message(error)}"
            continue
        for notification in _samples():
            try:
                template.render(_lenient(template_context(notification, external_url)))
            except Exception as error:  # noqa: BLE001 (a template can raise anything: reported)
                problems[part] = f"the template fails on a sample alert: {_jinja_message(error)}"
                break
    return problems


def _jinja_message(error: BaseException) -> str:
    """The error without the template's source (it may be long); with its line if known."""
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    line = getattr(error, "lineno", None)
    return f"{message} (line {line})" if line else message


class _AnyKey(dict[str, str]):
    """A label or annotation map of the sample: a key it lacks renders as a placeholder,
    since real alerts carry keys of the user's choosing."""

    def __missing__(self, key: str) -> str:
        return f"<{key}>"


_MAPS = ("group_labels", "common_labels", "common_annotations")


def _lenient(context: dict[str, Any]) -> dict[str, Any]:
    for alert in context["alerts"]:  # `firing` and `resolved` hold the same dicts
        alert["labels"] = _AnyKey(alert["labels"])
        alert["annotations"] = _AnyKey(alert["annotations"])
    for name in _MAPS:
        context[name] = _AnyKey(context[name])
    return context


def _samples() -> list[Notification]:
    labels = {"alertname": "SampleAlert", "stream": "sample", "severity": "warning"}
    annotations = {"summary": "sample summary", "description": "sample description"}
    fired = Alert(labels, annotations, AlertStatus.FIRING, 1.7e9, "0" * 16, "http://x/")
    ended = Alert(
        {**labels, "stream": "other"}, annotations, AlertStatus.RESOLVED, 1.7e9, "1" * 16, "", 1.7e9
    )

    def sample(*alerts: Alert) -> Notification:
        return Notification("sample", "{}:{}", {"alertname": "SampleAlert"}, alerts, "sample-id")

    return [sample(fired), sample(ended), sample(fired, ended)]


def template_context(notification: Notification, external_url: str) -> dict[str, Any]:
    payload = notification_payload(notification, external_url)
    alerts = [_alert(alert) for alert in payload["alerts"]]
    return {
        "receiver": payload["receiver"],
        "status": payload["status"],
        "alerts": alerts,
        "firing": [alert for alert in alerts if alert["status"] == "firing"],
        "resolved": [alert for alert in alerts if alert["status"] == "resolved"],
        "group_key": payload["groupKey"],
        "group_labels": payload["groupLabels"],
        "common_labels": payload["commonLabels"],
        "common_annotations": payload["commonAnnotations"],
        "external_url": external_url,
        "notification_id": notification.notification_id,
    }


def _alert(alert: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": alert["status"],
        "labels": alert["labels"],
        "annotations": alert["annotations"],
        "starts_at": alert["startsAt"],
        "ends_at": "" if alert["endsAt"] == ZERO_TIME else alert["endsAt"],
        "generator_url": alert["generatorURL"],
        "fingerprint": alert["fingerprint"],
    }


def one_line(text: str) -> str:
    """A header value: no line breaks or control characters, whitespace collapsed, bounded."""
    flat = " ".join(_NOT_ONE_LINE.sub(" ", text).split())
    return flat if len(flat) <= MAX_SUBJECT else flat[: MAX_SUBJECT - 1] + "…"
