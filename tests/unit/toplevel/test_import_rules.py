"""The import rules of the package (`daemon/README.md`, `anomalyd.worker`'s docstring),
checked on the source: only `worker/kafka/` and the worker's composition speak to Kafka
and Faust, and nothing below the worker imports it but the command line."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "daemon" / "anomalyd"
KAFKA_LIBRARIES = {"faust", "mode", "aiokafka"}
COMPOSITION = {"app.py", "run.py", "reload.py", "shutdown.py"}
COMMAND_LINE = {"cli.py", "demo.py", "send.py"}


def imported(path: Path) -> set[str]:
    """The modules `path` imports, as written (absolute imports only: the package uses no
    relative ones)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def where(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def test_only_kafka_and_the_composition_import_faust_mode_or_aiokafka() -> None:
    allowed = {f"worker/{name}" for name in COMPOSITION}
    offenders = [
        where(path)
        for path in sources()
        if not where(path).startswith("worker/kafka/")
        and where(path) not in allowed
        and {name.split(".")[0] for name in imported(path)} & KAFKA_LIBRARIES
    ]
    assert offenders == []


def test_nothing_outside_the_worker_imports_it_but_the_command_line() -> None:
    offenders = [
        where(path)
        for path in sources()
        if not where(path).startswith("worker/")
        and where(path) not in COMMAND_LINE
        and any(name.startswith("anomalyd.worker") for name in imported(path))
    ]
    assert offenders == []
