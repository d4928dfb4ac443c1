"""The templates of rule `labels:`, `annotations:` and `summary`: placeholders only.

Two spellings of the same few placeholders, so a Prometheus rule can be pasted:

- `{{ $value }}`, `{{ $labels.region }}` (also `.Value`, `.Labels.region`), as in
  Prometheus alerting rules;
- `{value}`, `{stream}`, `{region}`, as `summary` has always read.

No functions, pipes, loops or attribute access: rendering is one pass of substitution,
so a template from the config and values from events cannot run code, recurse, or grow
without bound (the result is cut at `max_chars`). `check` finds the Prometheus constructs
this does not support, for `check-config` to name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

#: `{{ ... }}` first, so its inner braces are not read as `{name}`.
_TOKEN = re.compile(r"\{\{(.*?)\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}", re.DOTALL)
_SIMPLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_VALUE = re.compile(r"\s*(?:\$value|\.Value)\s*")
_LABEL = re.compile(r"\s*(?:\$labels|\.Labels)\.([A-Za-z_][A-Za-z0-9_]*)\s*")
#: What a template may read besides labels, and what changes with every event.
VALUE_FACTS = frozenset({"value", "expected", "reason"})
SUPPORTED = "{{ $value }}, {{ $labels.NAME }}, or {NAME} (no functions or pipes)"


def check(template: str, *, allow_value: bool) -> str | None:
    """Why `template` cannot be rendered here, or None. `allow_value`: False for labels,
    which are the alert's identity (a label from the value would make each event a new
    alert)."""
    for found in _TOKEN.finditer(template):
        inner, name = found.group(1), found.group(2)
        if inner is None:
            if not allow_value and name in VALUE_FACTS:
                return f"{{{name}}} changes with every event: a label may not use it"
            continue
        if _LABEL.fullmatch(inner):
            continue
        if _VALUE.fullmatch(inner):
            if not allow_value:
                return "$value changes with every event: a label may not use it"
            continue
        return f"unsupported template {found.group(0)!r}: use {SUPPORTED}"
    return None


def render(
    template: str,
    labels: Mapping[str, str],
    facts: Mapping[str, str],
    max_chars: int,
) -> str:
    """`template` with its placeholders filled: `$labels.X` from `labels`, `$value` from
    facts["value"], `{name}` from `facts` then `labels`. An unknown `{name}` stays as
    written; an unknown label is empty (as in Prometheus)."""

    def simple(found: re.Match[str]) -> str:
        name = found.group(1)
        return facts.get(name, labels.get(name, found.group(0)))

    def fill(found: re.Match[str]) -> str:
        inner, name = found.group(1), found.group(2)
        if inner is None:
            return facts.get(name, labels.get(name, found.group(0)))
        label = _LABEL.fullmatch(inner)
        if label is not None:
            return labels.get(label.group(1), "")
        if _VALUE.fullmatch(inner):
            return facts.get("value", "")
        # Not Prometheus' (check() rejects it in labels and annotations): as `summary`
        # always read it, outer braces literal, `{{stream}}` -> `{cpu}`.
        return "{" + _SIMPLE.sub(simple, "{" + inner + "}") + "}"

    text = _TOKEN.sub(fill, template)
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"
