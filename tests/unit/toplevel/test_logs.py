"""The log's JSON rendering: a traceback says where and what, never a frame's locals."""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson

from anomalyd.logs import logging_config

SECRET = "tok-8c1f9d2e-never-in-a-log"


def _formatter() -> logging.Formatter:
    """The formatter the worker's one handler uses, built as dictConfig builds it."""
    spec: dict[str, Any] = dict(logging_config("info")["formatters"]["json"])
    factory = spec.pop("()")
    formatter: logging.Formatter = factory(**spec)
    return formatter


def _fails(token: str) -> None:
    header = f"Bearer {token}"
    raise RuntimeError(f"could not read a header of {len(header)} characters")


def test_a_logged_exception_carries_no_locals() -> None:
    try:
        _fails(SECRET)
    except RuntimeError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1, "boom", (), exc_info)
    line = _formatter().format(record)

    assert SECRET not in line
    rendered = orjson.loads(line)
    [stack] = rendered["exception"]
    assert stack["exc_type"] == "RuntimeError"
    assert [frame["name"] for frame in stack["frames"]][-1] == "_fails", "where it failed"
    assert all("locals" not in frame for frame in stack["frames"])
