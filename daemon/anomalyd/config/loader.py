"""Load the YAML config: expand `${VAR}`, apply environment overrides, validate, and
report every problem at once with the path to the key."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from anomalyd.config.schema import AnomalydConfig
from anomalyd.config.yamlfile import YamlProblem, load_yaml

#: `${VAR}` or `${VAR:-default}`; `$${` stays a literal `${`.
_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


EMPTY_FILE = (
    "the file holds no config (it is empty or only comments); write `{}` to run on the"
    " defaults alone"
)


class ConfigError(Exception):
    """The config cannot be used; `problems` lists each one with its key path."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(problems))


def load_config(
    path: str | os.PathLike[str],
    environ: Mapping[str, str] | None = None,
    overrides: Sequence[str] = (),
) -> AnomalydConfig:
    """Read, expand and validate the config file at `path`.

    Raises ConfigError listing every problem; never returns a partial config.
    """
    source = str(path)
    environ = os.environ if environ is None else environ
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(source, [f"cannot read the config file: {error.strerror}"]) from error
    return parse_config(text, source=source, environ=environ, overrides=overrides)


def parse_config(
    text: str,
    *,
    source: str = "<config>",
    environ: Mapping[str, str] | None = None,
    overrides: Sequence[str] = (),
) -> AnomalydConfig:
    """Validate config text. `overrides` are `key.path=value` edits of the file (YAML values),
    e.g. `model.threshold=0.6` or `rules[0].threshold=900`, applied before validation."""
    environ = os.environ if environ is None else environ
    try:
        raw = load_yaml(text)
    except YamlProblem as error:
        raise ConfigError(source, [f"not accepted as YAML: {error}"]) from error
    except yaml.YAMLError as error:
        raise ConfigError(source, [f"not valid YAML: {_yaml_problem(error)}"]) from error
    if raw is None:
        # Empty, blank or only comments: never what was meant (a truncated write, a
        # failed template render), and applying it would drop every rule and receiver.
        raise ConfigError(source, [EMPTY_FILE])
    if not isinstance(raw, dict):
        raise ConfigError(source, ["the top level must be a mapping of sections"])
    # Keyword arguments must be text: report other keys instead of a TypeError.
    problems = [f"{key!r}: a section name must be text" for key in raw if not isinstance(key, str)]
    raw = {key: value for key, value in raw.items() if isinstance(key, str)}
    expanded = _expand(raw, environ, path="", problems=problems)
    for override in overrides:
        problem = _apply_override(expanded, override)
        if problem:
            problems.append(problem)
    try:
        config = AnomalydConfig(**expanded)
    except ValidationError as error:
        problems.extend(_describe(error, expanded))
        config = None
    if problems or config is None:
        raise ConfigError(source, problems)
    return config


def _yaml_problem(error: yaml.YAMLError) -> str:
    """What and where, without quoting the file: the offending line may hold a secret,
    and problems end up in logs and on /api/status."""
    if not isinstance(error, yaml.MarkedYAMLError) or error.problem_mark is None:
        return str(error)
    text = f"{error.problem} at {_mark(error.problem_mark)}"
    if error.context:
        where = f" at {_mark(error.context_mark)}" if error.context_mark is not None else ""
        text += f" ({error.context}{where})"
    return text


def _mark(mark: yaml.Mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)")


def _path_keys(path: str) -> list[str | int] | None:
    """`rules[0].threshold` -> ["rules", 0, "threshold"]; None if it is not a key path."""
    keys: list[str | int] = []
    for segment in path.split("."):
        match = _SEGMENT.fullmatch(segment)
        if match is None:
            return None
        keys.append(match.group(1))
        keys.extend(int(i) for i in re.findall(r"\[(\d+)\]", match.group(2)))
    return keys


def _apply_override(raw: dict[str, Any], override: str) -> str | None:
    """Set one `key.path=value` (a YAML value) in the raw config; the problem if it cannot."""
    path, sep, text = override.partition("=")
    keys = _path_keys(path.strip()) if sep else None
    if not keys:
        return f"--set {override!r}: expected key.path=value"
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    node: Any = raw
    try:
        for key in keys[:-1]:
            node = node.setdefault(key, {}) if isinstance(key, str) else node[key]
        node[keys[-1]] = value
    except (IndexError, KeyError, TypeError, AttributeError):
        return f"--set {override!r}: {path.strip()} does not exist"
    return None


def _expand(node: Any, environ: Mapping[str, str], path: str, problems: list[str]) -> Any:
    """Expand variables inside string scalars only, so values cannot change the YAML structure."""
    if isinstance(node, dict):
        return {
            key: _expand(value, environ, f"{path}.{key}" if path else str(key), problems)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_expand(item, environ, f"{path}[{i}]", problems) for i, item in enumerate(node)]
    if isinstance(node, str):
        return _expand_text(node, environ, path, problems)
    return node


def _expand_text(text: str, environ: Mapping[str, str], path: str, problems: list[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        value = environ.get(name)
        if value is not None and (value != "" or default is None):
            return value
        if default is not None:
            return default
        problems.append(
            f"{path}: environment variable {name} is not set (use ${{{name}:-default}})"
        )
        return ""

    return _VARIABLE.sub(replace, text)


def _describe(error: ValidationError, raw: Any) -> list[str]:
    return [f"{_location(item['loc'], raw)}: {item['msg']}" for item in error.errors()]


def _location(loc: tuple[int | str, ...], raw: Any) -> str:
    """`rules[0].threshold`: the path as the user wrote it, without union tags."""
    text = ""
    node = raw
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        if _is_union_tag(part, node):
            continue  # pydantic names the union member; the user never wrote it
        text += f".{part}" if text else part
        node = node.get(part) if isinstance(node, dict) else None
    return text or "(top level)"


def _is_union_tag(part: str, node: Any) -> bool:
    """Whether `part` is pydantic's name for a union member rather than a key: the member
    picked by `type`, or a tag like `literal['embedded']` / `list[str]`, under any value the
    user wrote (keys the schema requires are identifiers)."""
    if isinstance(node, dict):
        return part not in node and (part == node.get("type") or not part.isidentifier())
    return node is not None or not part.isidentifier()
