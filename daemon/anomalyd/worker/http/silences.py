"""The silences API, in Alertmanager's shapes (API v2):

- `GET /api/silences`: every silence, with `status.state` pending | active | expired;
- `POST /api/silences`: create (or, with the `id` of one made through the API, replace)
  a silence; answers `{"silenceID": ...}`;
- `DELETE /api/silences/{id}`: expire a silence now.

Reading is open, like the rest of the HTTP endpoints; writing needs
`Authorization: Bearer <http.api_token>` (compared in constant time). Without a token
in the config, writes answer 403: nobody can silence alerts by accident.
"""

from __future__ import annotations

import hmac
from typing import Any, Protocol

import orjson
import structlog
from pydantic import SecretStr, ValidationError

from anomalyd.clock import Clock
from anomalyd.config.routing import Silence
from anomalyd.notify.silence import Silences, expired, silence_state
from anomalyd.worker.http.web import ApiError, HttpRequest

_log = structlog.get_logger(__name__)

_MAX_BODY = 64 * 1024


class SilenceStore(Protocol):
    """Where silences live: `Delivery` in the worker, a few lines in tests."""

    @property
    def silences(self) -> Silences: ...

    async def save_silence(self, silence: Silence) -> None: ...

    def new_silence_id(self) -> str: ...


class SilenceApi:
    """The API's decisions, apart from the web server: each method returns the JSON body
    or raises ApiError with the status to answer."""

    def __init__(self, store: SilenceStore, token: SecretStr | None, clock: Clock) -> None:
        self._store = store
        self._token = token.get_secret_value().encode() if token is not None else None
        self._clock = clock

    def list(self) -> list[dict[str, Any]]:
        now = self._clock.now()
        return [self._shown(silence, now) for silence in self._store.silences.all()]

    async def get(self, silence_id: str) -> dict[str, Any]:
        return self._shown(self._find(silence_id), self._clock.now())

    async def create(self, request: HttpRequest) -> dict[str, Any]:
        self._authorize(request)
        body = await json_body(request)
        now = self._clock.now()
        silence_id = body.get("id")
        if silence_id is not None:
            if not isinstance(silence_id, str):  # a list is not even a key to look up
                raise ApiError(400, "id: the text id of a silence made through the API")
            self._writable(silence_id)
        else:
            silence_id = self._store.new_silence_id()
        silence = _validated({"startsAt": now, **body, "id": silence_id, "updatedAt": now})
        if silence.ends_at is None:
            raise ApiError(400, "endsAt: a silence made through the API needs an end")
        if silence.ends_at <= now:
            raise ApiError(400, "endsAt: must be in the future")
        await self._store.save_silence(silence)
        _log.info("silence_created", id=silence_id, created_by=silence.created_by)
        return {"silenceID": silence_id}

    async def expire(self, request: HttpRequest, silence_id: str) -> dict[str, Any]:
        self._authorize(request)
        silence = self._writable(silence_id)
        try:
            ended = expired(silence, self._clock.now())
        except ValueError as error:
            raise ApiError(409, str(error)) from error
        await self._store.save_silence(ended)
        _log.info("silence_expired", id=silence_id)
        return {"silenceID": silence_id, "status": {"state": "expired"}}

    def _authorize(self, request: HttpRequest) -> None:
        authorize(request, self._token)

    def _find(self, silence_id: str) -> Silence:
        silence = self._store.silences.get(silence_id)
        if silence is None:
            raise ApiError(404, f"no silence with id {silence_id!r}")
        return silence

    def _writable(self, silence_id: str) -> Silence:
        silence = self._find(silence_id)
        if self._store.silences.is_configured(silence_id):
            raise ApiError(409, f"silence {silence_id!r} is defined in the config file: edit it")
        return silence

    @staticmethod
    def _shown(silence: Silence, now: float) -> dict[str, Any]:
        return {**silence.to_api(), "status": {"state": silence_state(silence, now).value}}


def authorize(request: HttpRequest, token: bytes | None) -> None:
    """The API's writes need `Authorization: Bearer <http.api_token>` (compared in constant
    time): 401 without it or with another token; 403 when no token is configured."""
    if token is None:
        raise ApiError(403, "writing is disabled: set http.api_token (e.g. ${ANOMALYD_API_TOKEN})")
    given = bearer_credentials(request.headers.get("Authorization", ""))
    if given is None or not hmac.compare_digest(given, token):
        raise ApiError(401, "a valid bearer token is required", {"WWW-Authenticate": "Bearer"})


def bearer_credentials(header: str) -> bytes | None:
    """The credentials of `Bearer <credentials>` as bytes, or None for any other header.
    aiohttp decodes header bytes that are not UTF-8 into lone surrogates
    (surrogateescape): they are turned back into the bytes sent, so an odd header is
    compared (and refused) like any other, never an error."""
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    try:
        return credentials.strip().encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that no byte decodes to: not a token we issue
        return None


async def json_body(request: HttpRequest) -> dict[str, Any]:
    raw = await request.read()
    if len(raw) > _MAX_BODY:
        raise ApiError(413, f"the body is larger than {_MAX_BODY} bytes")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ApiError(400, f"the body is not JSON: {error}") from error
    if not isinstance(body, dict):
        raise ApiError(400, "the body is a JSON object")
    return body


def _validated(body: dict[str, Any]) -> Silence:
    try:
        return Silence.model_validate(body)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'silence'}: {item['msg']}"
            for item in error.errors()
        )
        raise ApiError(400, problems) from error
