"""The silences API without a web server: authorization, validation, and Alertmanager's
shapes, against an in-memory store on a manual clock."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from anomalyd.clock import ManualClock
from anomalyd.config.routing import Silence
from anomalyd.notify.silence import Silences
from anomalyd.worker.http.silences import SilenceApi
from anomalyd.worker.http.web import ApiError

T0 = 1_700_000_000.0
TOKEN = "t0ken"


class Store:
    def __init__(self, configured: list[Silence] | None = None) -> None:
        self.silences = Silences(configured or [])
        self.saved: list[Silence] = []

    async def save_silence(self, silence: Silence) -> None:
        self.saved.append(silence)
        self.silences.apply(silence.stable_id(), silence)

    def new_silence_id(self) -> str:
        return f"id-{len(self.saved) + 1}"


class FakeRequest:
    def __init__(self, body: Any = None, token: str | None = TOKEN, raw: bytes | None = None):
        self.headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        self._raw = raw if raw is not None else orjson.dumps(body)

    async def read(self) -> bytes:
        return self._raw


def api(store: Store | None = None, token: str | None = TOKEN) -> tuple[SilenceApi, Store]:
    store = store or Store()
    clock = ManualClock(T0)
    return SilenceApi(store, SecretStr(token) if token else None, clock), store


BODY = {"matchers": ['stream="db"'], "endsAt": T0 + 3600, "createdBy": "me", "comment": "why"}


async def test_create_list_expire() -> None:
    service, store = api()
    created = await service.create(FakeRequest(BODY))
    assert created == {"silenceID": "id-1"}
    [silence] = store.saved
    assert (silence.starts_at, silence.ends_at, silence.updated_at) == (T0, T0 + 3600, T0)
    [shown] = service.list()
    assert shown["status"] == {"state": "active"}
    assert shown["startsAt"] == "2023-11-14T22:13:20.000Z"
    assert shown["createdBy"] == "me"
    expired = await service.expire(FakeRequest(), "id-1")
    assert expired["status"] == {"state": "expired"}
    assert service.list()[0]["status"] == {"state": "expired"}


async def test_an_update_by_id_replaces_the_silence() -> None:
    service, store = api()
    await service.create(FakeRequest(BODY))
    changed = {**BODY, "id": "id-1", "comment": "longer", "endsAt": T0 + 7200}
    assert await service.create(FakeRequest(changed)) == {"silenceID": "id-1"}
    assert store.silences.get("id-1") is not None
    assert store.silences.get("id-1").comment == "longer"  # type: ignore[union-attr]
    with pytest.raises(ApiError) as caught:
        await service.create(FakeRequest({**BODY, "id": "unknown"}))
    assert caught.value.status == 404


@pytest.mark.parametrize(
    ("token", "configured", "status"),
    [
        (None, TOKEN, 401),
        ("wrong", TOKEN, 401),
        (TOKEN[:-1], TOKEN, 401),
        (TOKEN, None, 403),  # no token configured: writing is off
        ("", None, 403),
    ],
)
async def test_writes_need_the_token(
    token: str | None, configured: str | None, status: int
) -> None:
    service, store = api(token=configured)
    for attempt in (
        service.create(FakeRequest(BODY, token=token)),
        service.expire(FakeRequest(token=token), "x"),
    ):
        with pytest.raises(ApiError) as caught:
            await attempt
        assert caught.value.status == status
    assert store.saved == []


async def test_the_bearer_scheme_is_case_insensitive() -> None:
    service, _ = api()
    request = FakeRequest(BODY)
    request.headers["Authorization"] = f"bearer {TOKEN}"
    assert await service.create(request)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer " + chr(0xDCFF),  # the byte 0xff, as aiohttp decodes it (surrogateescape)
        f"Bearer {TOKEN}" + chr(0xDCFF),
        "Bearer " + chr(0xD800),  # a surrogate no byte decodes to
        "Bearer \x00",
        "Bearer " + "é" * 5000,
        chr(0xDCFF),
        "Basic dXNlcjpwYXNz",
    ],
)
async def test_an_odd_authorization_header_is_401_never_an_error(header: str) -> None:
    service, store = api()
    create, expire = FakeRequest(BODY), FakeRequest()
    for request in (create, expire):
        request.headers["Authorization"] = header
    for attempt in (service.create(create), service.expire(expire, "x")):
        with pytest.raises(ApiError) as caught:
            await attempt
        assert caught.value.status == 401
    assert store.saved == []


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"not json", "not JSON"),
        (b"[]", "JSON object"),
        (orjson.dumps({"endsAt": T0 + 60}), "matchers"),
        (orjson.dumps({"matchers": ["a=~'('"], "endsAt": T0 + 60}), "matchers"),
        (orjson.dumps({"matchers": ["a=b"]}), "needs an end"),
        (orjson.dumps({"matchers": ["a=b"], "endsAt": T0 - 1, "startsAt": T0 - 10}), "future"),
        (orjson.dumps({"matchers": ["a=b"], "endsAt": T0 + 60, "extra": 1}), "extra"),
        (b"x" * 70_000, "larger"),
        (orjson.dumps({"matchers": ["a=b"], "endsAt": 1e300}), "endsAt: Value error, out of range"),
        (orjson.dumps({"matchers": ["a=b"], "endsAt": "9999-12-31T23:59:59-01:00"}), "range"),
        (orjson.dumps({"matchers": ["a=b"], "endsAt": T0 + 60, "startsAt": -1}), "range"),
        (orjson.dumps({"matchers": ["a=b"], "endsAt": T0 + 60, "id": [1]}), "id: the text id"),
        (orjson.dumps({"matchers": ["a=b"], "endsAt": T0 + 60, "id": {}}), "id: the text id"),
        (b'{"matchers": ["a=b"], "endsAt": 1' + b"0" * 400 + b"}", "not JSON"),
        (b'{"matchers": ["a=\xff"], "endsAt": 2e9}', "not JSON"),  # not UTF-8
        (b"[" * 100_00 + b"]" * 100_00, "not JSON"),  # nested deeper than orjson reads
        (orjson.dumps({"matchers": [{"name": "a", "value": 1}], "endsAt": T0 + 60}), "matchers"),
        (
            orjson.dumps(
                {"matchers": [{"name": "a", "value": "(x)\\1", "isRegex": True}], "endsAt": 2e9}
            ),
            "backreferences",
        ),
    ],
)
async def test_bad_bodies_are_400_with_the_reason(raw: bytes, problem: str) -> None:
    service, store = api()
    with pytest.raises(ApiError) as caught:
        await service.create(FakeRequest(raw=raw))
    assert caught.value.status in (400, 413)
    assert problem.lower() in caught.value.message.lower()
    assert store.saved == []


async def test_config_silences_are_listed_but_not_writable() -> None:
    configured = Silence.model_validate({"id": "cfg", "matchers": ["a=b"]})
    service, _ = api(Store([configured]))
    assert [s["id"] for s in service.list()] == ["cfg"]
    with pytest.raises(ApiError) as caught:
        await service.expire(FakeRequest(), "cfg")
    assert caught.value.status == 409
    assert "config file" in caught.value.message
    with pytest.raises(ApiError) as missing:
        await service.get("nope")
    assert missing.value.status == 404
