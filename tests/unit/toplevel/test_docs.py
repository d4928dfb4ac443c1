"""The documentation's relative links resolve: each linked file exists, and each `#anchor`
names a heading of the file it points into (GitHub's anchor spelling). Links inside code
blocks and inline code are text, not links; absolute URLs are not checked (no network)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCS = sorted(
    path
    for pattern in ("*.md", "config/**/*.md", "deploy/**/*.md", "daemon/*.md", "tests/**/*.md")
    for path in ROOT.glob(pattern)
    if ".venv" not in path.parts
)
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _prose(text: str) -> Iterator[str]:
    """The lines outside fenced code blocks, with inline code removed."""
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            yield re.sub(r"`[^`]*`", "", line)


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens.

    >>> anchor("Security: who may write what")
    'security-who-may-write-what'
    >>> anchor("The `alerts` API, v2")
    'the-alerts-api-v2'
    """
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in a markdown file (repeats get -1, -2, as on GitHub)."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in _prose_headings(path.read_text(encoding="utf-8")):
        base = anchor(line)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def _prose_headings(text: str) -> Iterator[str]:
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (match := _HEADING.match(line)):
            yield match.group(2)


def links(path: Path) -> Iterator[str]:
    for line in _prose(path.read_text(encoding="utf-8")):
        yield from _LINK.findall(line)


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """Each relative link of `path` whose file or anchor does not exist, with the reason."""
    problems = []
    for target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        file_part, _, fragment = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            problems.append(f"{target}: no such file {linked.relative_to(root)}")
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
            problems.append(f"{target}: no heading #{fragment} in {linked.relative_to(root)}")
    return problems


def test_the_documentation_files_are_found() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in DOCS}
    assert {"README.md", "config/README.md", "deploy/README.md", "daemon/README.md"} <= names


@pytest.mark.parametrize("path", DOCS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(path: Path) -> None:
    assert broken_links(path) == []


def test_a_broken_link_or_anchor_is_reported(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## A section: here\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[ok](other.md#a-section-here) [self](#page) [web](https://example.com)\n"
        "[gone](missing.md) [no anchor](other.md#nowhere) [no self](#elsewhere)\n"
        "```\n[in code](ignored.md)\n```\n`[inline](ignored.md)`\n",
        encoding="utf-8",
    )
    problems = [problem.split(":")[0] for problem in broken_links(page, root=tmp_path)]
    assert problems == ["missing.md", "other.md#nowhere", "#elsewhere"]
