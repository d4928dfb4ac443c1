"""Label matchers, written the way Alertmanager writes them (`severity="critical"`,
`stream=~"checkout\\..*"`, `region!="us"`, `team!~"x|y"`), as the config, the silences
API and the silences topic read them, and as `notify/` runs them.

Regular expressions are anchored at both ends and use RE2's syntax, as in Alertmanager
(which uses Go's RE2), and run on RE2 (the `google-re2` package): matching takes time
linear in the label value whatever the pattern, so no matcher can freeze the worker
(Python's `re` backtracks: `([a-z]+)*-prod` against 32 letters runs for minutes).
What RE2 refuses (backreferences, lookaround) is refused where the matcher is read:
config, API and the silences topic alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any

import re2
from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Matched against the stripped text: a trailing `\s*` after a lazy value backtracks in
#: quadratic time (a 60 KB matcher of spaces took 9 s).
_MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*)", re.DOTALL)
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "r": "\r", "t": "\t"}
_ESCAPES.update({"a": "\a", "b": "\b", "f": "\f", "v": "\v"})
_HEX_DIGITS = {"x": 2, "u": 4, "U": 8}


class MatchOp(StrEnum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


_OP_ORDER = {op: i for i, op in enumerate(MatchOp)}


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher. A missing label matches as the empty string, as in Alertmanager
    (so `region!="us"` matches alerts without a region, and `region=""` matches only those)."""

    name: str
    op: MatchOp
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        match self.op:
            case MatchOp.EQUAL:
                return actual == self.value
            case MatchOp.NOT_EQUAL:
                return actual != self.value
            case MatchOp.REGEX:
                return _fullmatch(self.value, actual)
            case MatchOp.NOT_REGEX:
                return not _fullmatch(self.value, actual)

    def __str__(self) -> str:
        return f"{self.name}{self.op.value}{go_quote(self.value)}"

    def sort_key(self) -> tuple[str, int, str]:
        """Alertmanager's order (name, then type, then value): route keys depend on it."""
        return (self.name, _OP_ORDER[self.op], self.value)

    def to_api(self) -> dict[str, Any]:
        """Alertmanager's API v2 shape."""
        regex = self.op in (MatchOp.REGEX, MatchOp.NOT_REGEX)
        equal = self.op in (MatchOp.EQUAL, MatchOp.REGEX)
        return {"name": self.name, "value": self.value, "isRegex": regex, "isEqual": equal}


def _re2_options() -> re2.Options:
    options = re2.Options()
    # RE2 prints a refused pattern to stderr itself; we raise it as a ValueError instead,
    # which the config check, the API and the silences topic report in their own way.
    options.log_errors = False
    return options


_RE2_OPTIONS = _re2_options()


@lru_cache(maxsize=4096)
def _anchored(pattern: str) -> re2._Regexp[str]:
    """Compiled on its own (so `)` cannot close a wrapper group); used with fullmatch,
    which anchors it at both ends. Raises ValueError for a pattern RE2 refuses."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as error:
        raise ValueError(_re2_reason(error)) from None
    except UnicodeEncodeError:  # a lone surrogate, from a YAML escape: RE2 reads UTF-8
        raise ValueError("the pattern is not valid Unicode text") from None


def _re2_reason(error: re2.error) -> str:
    """RE2 says why in bytes (`b'invalid escape sequence: \\1'`): as text."""
    reason = error.args[0] if error.args else ""
    text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
    return f"{text} (RE2 syntax, as in Alertmanager: no backreferences or lookaround)"


def _fullmatch(pattern: str, value: str) -> bool:
    try:
        return _anchored(pattern).fullmatch(value) is not None
    except UnicodeEncodeError:  # a lone surrogate in the value: match what can be encoded
        text = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        return _anchored(pattern).fullmatch(text) is not None


def matches_all(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    return all(matcher.matches(labels) for matcher in matchers)


def go_quote(value: str) -> str:
    """Quote as Go's %q does for the characters that matter here, so a quote or a newline
    in a value cannot break a matcher or a group key."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


def parse_matcher(text: str) -> Matcher:
    """`name="value"`, `name!="value"`, `name=~"regex"`, `name!~"regex"`; the value may be
    left unquoted when it has no spaces or quotes. Raises ValueError saying what is wrong."""
    found = _MATCHER.fullmatch(text.strip())
    if found is None:
        raise ValueError(
            f'{text!r} is not a matcher (examples: severity="critical", '
            f'stream=~"checkout\\\\..*", region!="us")'
        )
    name, op, raw = found.groups()
    value = _unquote(raw) if raw.startswith('"') else _bare(raw)
    return _checked(Matcher(name, MatchOp(op), value))


def _bare(raw: str) -> str:
    if any(c in raw for c in '"\\ ,{}') or any(c.isspace() for c in raw):
        raise ValueError(f"matcher value {raw!r} must be quoted")
    return raw


def _unquote(raw: str) -> str:
    """The inverse of go_quote, plus Go's other escapes (\\a \\b \\f \\v \\xHH \\uHHHH)."""
    if len(raw) < 2 or not raw.endswith('"'):
        raise ValueError(f"matcher value {raw} has no closing quote")
    body, out, i = raw[1:-1], [], 0
    while i < len(body):
        char = body[i]
        if char == '"':
            raise ValueError(f"matcher value {raw} has an unescaped quote inside")
        if char != "\\":
            out.append(char)
            i += 1
            continue
        decoded, i = _escape(body, i + 1, raw)
        out.append(decoded)
    return "".join(out)


def _escape(body: str, i: int, raw: str) -> tuple[str, int]:
    code = body[i : i + 1]
    if code in _ESCAPES:
        return _ESCAPES[code], i + 1
    if code in _HEX_DIGITS:
        digits = body[i + 1 : i + 1 + _HEX_DIGITS[code]]
        if len(digits) == _HEX_DIGITS[code] and all(c in "0123456789abcdefABCDEF" for c in digits):
            point = int(digits, 16)
            if point <= 0x10FFFF:
                return chr(point), i + 1 + len(digits)
    raise ValueError(f"matcher value {raw} has an invalid escape \\{code}")


def _checked(matcher: Matcher) -> Matcher:
    if matcher.op in (MatchOp.REGEX, MatchOp.NOT_REGEX):
        try:
            _anchored(matcher.value)
        except ValueError as error:
            raise ValueError(f"{matcher}: invalid regular expression: {error}") from None
    return matcher


def coerce_matcher(raw: Any) -> Matcher:
    """A matcher from its text, or from Alertmanager's API object
    (`{"name", "value", "isRegex", "isEqual"}`)."""
    if isinstance(raw, Matcher):
        return raw
    if isinstance(raw, str):
        return parse_matcher(raw)
    if isinstance(raw, Mapping):
        return _from_api(raw)
    raise ValueError('a matcher is text like severity="critical"')


def _from_api(raw: Mapping[str, Any]) -> Matcher:
    name, value = raw.get("name"), raw.get("value")
    regex, equal = raw.get("isRegex", False), raw.get("isEqual", True)
    if not isinstance(name, str) or not LABEL_NAME.fullmatch(name):
        raise ValueError("a matcher's name must be a label name")
    if not isinstance(value, str) or not isinstance(regex, bool) or not isinstance(equal, bool):
        raise ValueError("a matcher has a text value and boolean isRegex and isEqual")
    ops = {
        (False, True): MatchOp.EQUAL,
        (False, False): MatchOp.NOT_EQUAL,
        (True, True): MatchOp.REGEX,
        (True, False): MatchOp.NOT_REGEX,
    }
    return _checked(Matcher(name, ops[(regex, equal)], value))


#: A matcher field: written as text in YAML, printed as text.
MatcherField = Annotated[
    Matcher,
    PlainValidator(coerce_matcher),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string"}),
]
