"""The web server as the HTTP wing sees it: a request to read, an answer to give and a
route that maps methods to handlers. `routes.py` lists every route; the composition
(`worker/app.py`) serves them through Faust's web server. Nothing here knows Faust."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


class HttpRequest(Protocol):
    """What the APIs read of a request body (Faust's aiohttp request, or a test's)."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    async def read(self) -> bytes: ...


class Request(HttpRequest, Protocol):
    """What a handler reads of a request: its query string too."""

    @property
    def query(self) -> Mapping[str, str]: ...


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.message = message
        self.headers = headers or {}
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Answer:
    """A response: `body` is JSON-able (`json`), text (`html`) or bytes (`bytes`)."""

    body: Any
    status: int = 200
    kind: Literal["json", "html", "bytes"] = "json"
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None


#: A method of a route: (request, **the path's parameters) -> the answer.
Handler = Callable[..., Awaitable[Answer]]


@dataclass(frozen=True, slots=True)
class Route:
    path: str
    #: Lower-case HTTP method ("get", "post", ...) -> its handler.
    methods: Mapping[str, Handler]


async def answer_json(handle: Callable[[], Awaitable[Any]], status: int = 200) -> Answer:
    """The JSON body `handle` returns, or the ApiError it raises as `{"error": ...}`."""
    try:
        body = await handle()
    except ApiError as error:
        return Answer({"error": error.message}, error.status, headers=error.headers)
    return Answer(body, status)
