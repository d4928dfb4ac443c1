"""Where a config value came from, to blame each problem on its source: the file's line,
the environment variable, or the `--set` that wrote it (in that order of precedence:
the environment beats `--set`, which edits the file's values).

Pure: paths in, text out. A problem's text keeps its `path: message` shape (the status
page reads the path off it) and gains a suffix such as `(line 12)`,
`(from the environment: ANOMALYD_HTTP__PROT)` or `(from --set model.threshold)`; values
are never quoted (one may be a secret)."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from anomalyd.config.yamlfile import Location

ENV_PREFIX = "ANOMALYD_"
ENV_DELIMITER = "__"
_PATH_HEAD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+|\[\d+\])*): ")
_SEGMENT = re.compile(r"\.?([A-Za-z0-9_]+)|\[(\d+)\]")


def env_paths(environ: Mapping[str, str]) -> dict[Location, str]:
    """`ANOMALYD_KAFKA__EMBEDDED__PORT` -> {("kafka", "embedded", "port"): that name}: the
    overrides pydantic-settings reads (a variable without `__` is not one: `${VAR}`s such
    as ANOMALYD_API_TOKEN are read by the file)."""
    paths: dict[Location, str] = {}
    for name in environ:
        if name.upper().startswith(ENV_PREFIX) and ENV_DELIMITER in name:
            keys = name[len(ENV_PREFIX) :].lower().split(ENV_DELIMITER)
            paths[tuple(keys)] = name
    return paths


def stray_env_problems(env: Mapping[Location, str], sections: Collection[str]) -> list[str]:
    """Overrides of sections that do not exist: pydantic-settings would ignore them."""
    return [
        f"{name}: there is no section {path[0]!r} to override (from the environment)"
        for path, name in sorted(env.items(), key=lambda item: item[1])
        if path[0] not in sections
    ]


def parse_path(text: str) -> Location | None:
    """`rules[0].threshold` -> ("rules", 0, "threshold")."""
    keys: list[str | int] = []
    pos = 0
    for found in _SEGMENT.finditer(text):
        if found.start() != pos:
            return None
        keys.append(found.group(1) if found.group(1) is not None else int(found.group(2)))
        pos = found.end()
    return tuple(keys) if keys and pos == len(text) else None


def format_path(loc: Location) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(top level)"


def _related(a: Location, b: Location) -> bool:
    """One path lies inside the other (a section set as JSON holds the key in error)."""
    shorter = min(len(a), len(b))
    return shorter > 0 and a[:shorter] == b[:shorter]


@dataclass
class Origins:
    lines: Mapping[Location, int] = field(default_factory=dict)
    env: Mapping[Location, str] = field(default_factory=dict)
    sets: Mapping[Location, str] = field(default_factory=dict)

    def env_var(self, loc: Location) -> str | None:
        return next((name for path, name in self.env.items() if _related(path, loc)), None)

    def origin(self, loc: Location) -> str | None:
        """Where the value at `loc` was written, in words; None if nowhere (a default)."""
        name = self.env_var(loc)
        if name is not None:
            return f"from the environment: {name}"
        override = next((text for path, text in self.sets.items() if _related(path, loc)), None)
        if override is not None:
            return f"from --set {override}"
        for end in range(len(loc), 0, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return f"config line {line}"
        return None

    def blame(self, loc: Location, message: str) -> str:
        origin = self.origin(loc)
        text = f"{format_path(loc)}: {message}"
        return f"{text} ({origin})" if origin else text

    def blame_text(self, text: str) -> str:
        """A `path: message` problem written elsewhere, with its origin added."""
        head = _PATH_HEAD.match(text)
        loc = parse_path(head.group(1)) if head else None
        if loc is None:
            return text
        origin = self.origin(loc)
        return f"{text} ({origin})" if origin else text

    def describe(self, errors: Iterable[tuple[Location, str]]) -> list[str]:
        """Each (location, message) blamed; the several messages of one value that came
        from the environment as text where a list is expected, as one hint."""
        problems: list[str] = []
        hinted: set[Location] = set()
        items = list(errors)
        for loc, message in items:
            name = self.env_var(loc)
            wanted = _json_kind([text for where, text in items if where == loc])
            if name is not None and wanted is not None:
                if loc not in hinted:
                    hinted.add(loc)
                    problems.append(_json_hint(loc, name, wanted))
                continue
            problems.append(self.blame(loc, message))
        return problems


def _json_kind(messages: list[str]) -> str | None:
    """What pydantic says a value given as text should have been: list, mapping, or None."""
    if any("valid list" in text or "valid array" in text for text in messages):
        return "list"
    if any("valid dictionary" in text for text in messages):
        return "mapping"
    return None


def _json_hint(loc: Location, name: str, kind: str) -> str:
    if kind == "mapping":
        example = '{"key": "value"}'
    elif loc[-1:] == ("brokers",):
        example = '["kafka-1:9092", "kafka-2:9092"]'
    else:
        example = '["first", "second"]'
    return (
        f"{format_path(loc)}: a {kind} is expected: in the environment write it as JSON,"
        f" e.g. {name}='{example}' (from the environment: {name})"
    )
