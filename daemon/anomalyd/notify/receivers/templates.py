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

from jinja2 import Template
from jinja2.sandbox import ImmutableSandboxedEnvironment

from anomalyd.domain import ZERO_TIME
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


class EmailTemplates:
    """The three templates of one receiver, compiled once."""

    def __init__(
        self, subject: str | None = None, text: str | None = None, html: str | None = None
    ) -> None:
        plain = ImmutableSandboxedEnvironment(autoescape=False, trim_blocks=True)
        escaped = ImmutableSandboxedEnvironment(autoescape=True, trim_blocks=True)
        self._subject: Template = plain.from_string(subject or DEFAULT_SUBJECT)
        self._text: Template = plain.from_string(text or DEFAULT_TEXT)
        self._html: Template = escaped.from_string(html or DEFAULT_HTML)

    def render(self, notification: Notification, external_url: str) -> RenderedEmail:
        """Render all three parts; raises what Jinja2 raises on a broken template."""
        context = template_context(notification, external_url)
        return RenderedEmail(
            subject=one_line(self._subject.render(context)),
            text=self._text.render(context),
            html=self._html.render(context),
        )


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
