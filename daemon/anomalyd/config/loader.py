"""Load the YAML config: expand `${VAR}`, apply environment overrides, validate, and
report every problem at once with the path to the key."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError
from pydantic_settings import SettingsError

from anomalyd.config.origins import Origins, env_paths, stray_env_problems
from anomalyd.config.receivers import Receiver
from anomalyd.config.routing import Location, Route, Silence, check_routing
from anomalyd.config.schema import AnomalydConfig, name_problems
from anomalyd.config.yamlfile import YamlProblem, key_lines, load_yaml

#: Checks only building the receivers shows (`validate`): (index, receiver) pairs that
#: passed the schema and the external URL in, `receivers[i].key: why` problems out.
ReceiverCheck = Callable[[Sequence[tuple[int, Receiver]], str], list[str]]
_RECEIVER = TypeAdapter(Receiver)

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
    *,
    ignore: Collection[str] = (),
    receiver_check: ReceiverCheck | None = None,
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
    return parse_config(
        text,
        source=source,
        environ=environ,
        overrides=overrides,
        ignore=ignore,
        receiver_check=receiver_check,
    )


def parse_config(
    text: str,
    *,
    source: str = "<config>",
    environ: Mapping[str, str] | None = None,
    overrides: Sequence[str] = (),
    ignore: Collection[str] = (),
    receiver_check: ReceiverCheck | None = None,
) -> AnomalydConfig:
    """Validate config text. `overrides` are `key.path=value` edits of the file (YAML values),
    e.g. `model.threshold=0.6` or `rules[0].threshold=900`, applied before validation.
    `ignore`: top-level sections a command does not use, dropped unread (their `${VAR}`s
    need not be set). Every problem is found in one round: the schema's, the cross
    references' and `receiver_check`'s, each blamed on the line, environment variable or
    `--set` it came from."""
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
    # Overrides come from the process environment, as pydantic-settings reads them.
    origins = Origins(key_lines(text), env_paths(os.environ))
    # Keyword arguments must be text: report other keys instead of a TypeError.
    problems = [f"{key!r}: a section name must be text" for key in raw if not isinstance(key, str)]
    raw = {key: value for key, value in raw.items() if isinstance(key, str) and key not in ignore}
    expanded = _expand(raw, environ, path="", problems=problems)
    problems = [origins.blame_text(problem) for problem in problems]
    origins.sets, set_problems = _apply_overrides(expanded, overrides)
    problems.extend(set_problems)
    problems.extend(stray_env_problems(origins.env, AnomalydConfig.model_fields))
    config = _validate(expanded, origins, problems)
    if receiver_check is not None:
        url = config.app.external_url if config else _external_url(expanded)
        receivers = list(enumerate(config.receivers)) if config else _valid_receivers(expanded)
        problems.extend(origins.blame_text(p) for p in receiver_check(receivers, url))
    if problems or config is None:
        raise ConfigError(source, problems)
    return config


def _validate(
    expanded: dict[str, Any], origins: Origins, problems: list[str]
) -> AnomalydConfig | None:
    """The config, or None with its problems added: the schema's, and when the schema
    fails, the cross references among the parts that passed (a valid config has them
    checked by the schema itself)."""
    try:
        return AnomalydConfig(**expanded)
    except ValidationError as error:
        problems.extend(origins.describe(_errors(error, expanded)))
    except SettingsError as error:
        # pydantic-settings could not decode an override as JSON (a list or mapping field).
        problems.append(f"{error} (from the environment)")
    # When only the cross references failed, the schema has reported them already.
    found = "\n".join(problems)
    problems.extend(
        origins.blame(loc, text) for loc, text in _cross_problems(expanded) if text not in found
    )
    return None


def _apply_overrides(
    expanded: dict[str, Any], overrides: Sequence[str]
) -> tuple[dict[Location, str], list[str]]:
    """Apply each `--set`: the paths set (with the key as written), and the problems."""
    problems = []
    sets: dict[Location, str] = {}
    for override in overrides:
        keys, problem = _apply_override(expanded, override)
        if problem:
            problems.append(problem)
        elif keys:
            sets[tuple(keys)] = override.partition("=")[0].strip()
    return sets, problems


def _cross_problems(raw: dict[str, Any]) -> list[tuple[Location, str]]:
    """Cross references of a config whose schema failed, among the parts that passed:
    unique rule and receiver names, and what `route` and `silences` refer to."""
    rule_names = _names(raw.get("rules"))
    receiver_names = _names(raw.get("receivers"))
    problems = name_problems(rule_names, receiver_names)
    route = None
    if raw.get("route") is not None:
        try:
            route = Route.model_validate(raw["route"])
        except ValidationError:
            route = None  # its own problems are reported already
    silences = []
    for item in raw.get("silences") or []:
        try:
            silences.append(Silence.model_validate(item))
        except ValidationError:
            continue  # reported already
    problems.extend(check_routing(route, silences, receiver_names))
    return problems


def _names(items: Any) -> list[str]:
    if not isinstance(items, list):
        return []
    return [i["name"] for i in items if isinstance(i, dict) and isinstance(i.get("name"), str)]


def _valid_receivers(raw: dict[str, Any]) -> list[tuple[int, Receiver]]:
    found = []
    items = raw.get("receivers")
    for i, item in enumerate(items if isinstance(items, list) else []):
        try:
            found.append((i, _RECEIVER.validate_python(item)))
        except ValidationError:
            continue  # reported by the schema already
    return found


def _external_url(raw: dict[str, Any]) -> str:
    app = raw.get("app")
    url = app.get("external_url") if isinstance(app, dict) else None
    return (
        url
        if isinstance(url, str)
        else str(AnomalydConfig.model_fields["app"].default.external_url)
    )


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


def _apply_override(
    raw: dict[str, Any], override: str
) -> tuple[list[str | int] | None, str | None]:
    """Set one `key.path=value` (a YAML value) in the raw config: its keys, or the problem
    if it cannot."""
    path, sep, text = override.partition("=")
    keys = _path_keys(path.strip()) if sep else None
    if not keys:
        return None, f"--set {override!r}: expected key.path=value"
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
        return None, f"--set {override!r}: {path.strip()} does not exist"
    return keys, None


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


def _errors(error: ValidationError, raw: Any) -> list[tuple[Location, str]]:
    return [(_location(item["loc"], raw), item["msg"]) for item in error.errors()]


def _location(loc: tuple[int | str, ...], raw: Any) -> Location:
    """("rules", 0, "threshold"): the path as the user wrote it, without union tags."""
    path: list[str | int] = []
    node = raw
    for part in loc:
        if isinstance(part, int):
            path.append(part)
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        if _is_union_tag(part, node):
            continue  # pydantic names the union member; the user never wrote it
        path.append(part)
        node = node.get(part) if isinstance(node, dict) else None
    return tuple(path)


def _is_union_tag(part: str, node: Any) -> bool:
    """Whether `part` is pydantic's name for a union member rather than a key: the member
    picked by `type`, or a tag like `literal['embedded']` / `list[str]`, under any value the
    user wrote (keys the schema requires are identifiers)."""
    if isinstance(node, dict):
        return part not in node and (part == node.get("type") or not part.isidentifier())
    return node is not None or not part.isidentifier()
