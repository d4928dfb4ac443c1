"""Alertmanager's API v2, so that amtool, Karma and Grafana's Alertmanager data source
talk to any worker (`api/v2/openapi.yaml` of Alertmanager 0.25, its request and
response shapes):

- `GET /api/v2/status`: version, this worker as the cluster's name, the workers seen as
  peers, and the receivers and route as `config.original` (no secret: names only);
- `GET /api/v2/receivers`;
- `GET /api/v2/alerts`: every worker's firing alerts (the cluster view of the alerts
  topic), each with its receivers and `status: {state, silencedBy, inhibitedBy}`;
  filters `filter=` (matchers, repeatable), `active`, `silenced`, `inhibited`,
  `unprocessed` (booleans, default true) and `receiver` (a regex);
- `GET /api/v2/alerts/groups`: the same alerts by route and group labels;
- `GET|POST /api/v2/silences` (`filter=` too), `GET|DELETE /api/v2/silence/{id}`: the
  silences API (`silences.py`) in Alertmanager's shapes; writes need the bearer token;
- `/-/healthy`, `/-/ready`, and `POST /-/reload` (bearer token) to reload the config.

Silenced and inhibited are decided as delivery decides them at flush time: the same
silences, the same inhibition rules over the same source alerts (`Mutes`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import yaml
from pydantic import SecretStr

import anomalyd
from anomalyd.clock import Clock
from anomalyd.config import AnomalydConfig
from anomalyd.config.matchers import Matcher, coerce_matcher, matches_all, parse_matcher
from anomalyd.config.routing import default_route
from anomalyd.domain import Alert, format_time
from anomalyd.notify.inhibit import Inhibitor
from anomalyd.notify.route import RouteNode, build_tree, group_labels, match_routes
from anomalyd.notify.silence import Silences
from anomalyd.worker.http.silences import SilenceApi, authorize
from anomalyd.worker.http.web import Answer, ApiError, Request, Route, answer_json

#: A silence without an end (only the config's may lack one), as the API shows it.
_NO_END = "9999-12-31T23:59:59.000Z"


class Seen(Protocol):
    """An alert of the cluster view (`delivery.cluster_alerts.Seen`)."""

    @property
    def alert(self) -> Alert: ...

    @property
    def updated_at(self) -> float: ...


class ClusterView(Protocol):
    """Every worker's firing alerts (`delivery.cluster_alerts.ClusterAlerts`)."""

    def firing(self) -> Sequence[Seen]: ...

    def workers(self) -> dict[str, float]: ...


class Reload(Protocol):
    """The config reloader (`worker.reload.ConfigReloader`)."""

    def request(self, trigger: str) -> None: ...


#: A firing alert's labels -> (silencedBy, inhibitedBy).
MuteStatus = Callable[[Mapping[str, str]], tuple[list[str], list[str]]]


@dataclass(frozen=True, slots=True)
class Mutes:
    """What mutes an alert, as delivery's mute stages decide at a flush: the same two
    muters, its silences and its inhibitor (the config's rules in force over the alerts
    held in groups)."""

    silences: Silences
    inhibitor: Callable[[], Inhibitor]

    def at(self, now: float) -> MuteStatus:
        """The check of one request at `now`, as one flush's (`Muter.for_flush`): the
        inhibiting alerts are taken once. Every active silence that matches is named,
        as Alertmanager's `silencedBy` does; delivery needs only the first."""
        inhibited = self.inhibitor().for_flush(now)

        def status(labels: Mapping[str, str]) -> tuple[list[str], list[str]]:
            source = inhibited(labels) if inhibited is not None else None
            return self.silences.muting(labels, now), [source] if source is not None else []

        return status


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """The query of `GET /api/v2/alerts` (and of its groups)."""

    matchers: tuple[Matcher, ...] = ()
    active: bool = True
    silenced: bool = True
    inhibited: bool = True
    unprocessed: bool = True
    receiver: Matcher | None = None

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> AlertFilter:
        flags = {name: _flag(query, name) for name in ("active", "silenced", "inhibited")}
        return cls(
            matchers=parse_filter(query),
            unprocessed=_flag(query, "unprocessed"),
            receiver=_receiver(query.get("receiver")),
            **flags,
        )

    def wants(self, shown: Mapping[str, Any]) -> bool:
        """Alertmanager's `alertFilter` and receiver filter, on an alert as shown."""
        status = shown["status"]
        if status["state"] == "active" and not self.active:
            return False
        if status["silencedBy"] and not self.silenced:
            return False
        if status["inhibitedBy"] and not self.inhibited:
            return False
        names = [receiver["name"] for receiver in shown["receivers"]]
        if self.receiver is not None and not any(
            self.receiver.matches({"receiver": name}) for name in names
        ):
            return False
        return matches_all(self.matchers, shown["labels"])


def parse_filter(query: Mapping[str, str]) -> tuple[Matcher, ...]:
    """Every `filter=` matcher of the query (amtool sends one parameter per matcher)."""
    getall = getattr(query, "getall", None)
    texts: list[str] = list(getall("filter", [])) if getall is not None else []
    if getall is None and "filter" in query:
        texts = [query["filter"]]
    try:
        return tuple(parse_matcher(text) for text in texts)
    except ValueError as error:
        raise ApiError(400, f"bad matcher format: {error}") from error


def _receiver(pattern: str | None) -> Matcher | None:
    """`receiver=`: a regex over the receivers' names, anchored, RE2 as every matcher."""
    if pattern is None:
        return None
    try:
        return coerce_matcher({"name": "receiver", "value": pattern, "isRegex": True})
    except ValueError as error:
        raise ApiError(400, f"receiver: {error}") from error


def _flag(query: Mapping[str, str], name: str) -> bool:
    text = query.get(name, "true").lower()
    if text not in ("true", "false"):
        raise ApiError(400, f"{name}: true or false")
    return text == "true"


class AlertmanagerApi:
    """The decisions of the API v2, apart from the web server."""

    def __init__(
        self,
        view: ClusterView,
        silences: SilenceApi,
        mutes: Mutes,
        *,
        config: Callable[[], AnomalydConfig],
        clock: Clock,
        worker: str,
        token: SecretStr | None,
    ) -> None:
        self._view = view
        self._silences = silences
        self._mutes = mutes
        self._config = config
        self._clock = clock
        self._worker = worker
        self._token = token.get_secret_value().encode() if token is not None else None
        self._started = clock.now()

    # -- alerts -------------------------------------------------------------------------------

    def alerts(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        wanted = AlertFilter.parse(query)
        return [shown for shown in self._shown_alerts() if wanted.wants(shown)]

    def groups(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        wanted = AlertFilter.parse(query)
        tree = self._tree()
        groups: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, Any]] = {}
        for shown in self._shown_alerts(tree):
            if not wanted.wants(shown):
                continue
            for route in _routes(tree, shown["labels"]):
                labels = group_labels(route, shown["labels"])
                key = (route.path, tuple(sorted(labels.items())))
                group = groups.setdefault(
                    key, {"labels": labels, "receiver": {"name": route.receiver}, "alerts": []}
                )
                group["alerts"].append(shown)
        return list(groups.values())

    def _shown_alerts(self, tree: RouteNode | None = None) -> list[dict[str, Any]]:
        tree = tree if tree is not None else self._tree()
        muted = self._mutes.at(self._clock.now())
        return [self._shown(seen, tree, muted) for seen in self._view.firing()]

    def _shown(self, seen: Seen, tree: RouteNode | None, muted: MuteStatus) -> dict[str, Any]:
        """An alert as Alertmanager's `gettableAlert`."""
        alert = seen.alert
        silenced_by, inhibited_by = muted(alert.labels)
        state = "suppressed" if silenced_by or inhibited_by else "active"
        body = alert.to_json()
        del body["status"]
        receivers = dict.fromkeys(route.receiver for route in _routes(tree, alert.labels))
        return {
            **body,
            "updatedAt": format_time(seen.updated_at),
            "receivers": [{"name": name} for name in receivers],
            "status": {"state": state, "silencedBy": silenced_by, "inhibitedBy": inhibited_by},
        }

    def _tree(self) -> RouteNode | None:
        config = self._config()
        route = config.route or default_route([r.name for r in config.receivers])
        return build_tree(route) if route is not None else None

    # -- silences -----------------------------------------------------------------------------

    def silences(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        matchers = parse_filter(query)
        return [
            _v2_silence(shown)
            for shown in self._silences.list()
            if matches_all(matchers, _silence_labels(shown))
        ]

    async def silence(self, silence_id: str) -> dict[str, Any]:
        return _v2_silence(await self._silences.get(silence_id))

    # -- the rest -----------------------------------------------------------------------------

    def receivers(self) -> list[dict[str, str]]:
        return [{"name": receiver.name} for receiver in self._config().receivers]

    def status(self) -> dict[str, Any]:
        peers = sorted({self._worker, *self._view.workers()})
        return {
            "cluster": {
                "name": self._worker,
                "status": "ready",
                "peers": [{"name": name, "address": name} for name in peers],
            },
            "versionInfo": {
                "version": anomalyd.__version__,
                "revision": "",
                "branch": "",
                "buildUser": "",
                "buildDate": "",
                "goVersion": "",
            },
            "config": {"original": self._original()},
            "uptime": format_time(self._started),
        }

    def _original(self) -> str:
        """The receivers and the route as YAML, by name only: the config file itself may
        hold secrets (receiver URLs, tokens, passwords)."""
        config = self._config()
        shown: dict[str, Any] = {"receivers": [{"name": r.name} for r in config.receivers]}
        tree = self._tree()
        if tree is not None:
            shown["route"] = {"receiver": tree.receiver}
        return yaml.safe_dump(shown, sort_keys=False)

    def authorize(self, request: Request) -> None:
        authorize(request, self._token)


def _routes(tree: RouteNode | None, labels: Mapping[str, str]) -> list[RouteNode]:
    return match_routes(tree, labels) if tree is not None else []


def _silence_labels(shown: Mapping[str, Any]) -> dict[str, str]:
    """A silence's matchers as Alertmanager's silence filter reads them: name -> value."""
    return {matcher["name"]: matcher["value"] for matcher in shown["matchers"]}


def _v2_silence(shown: dict[str, Any]) -> dict[str, Any]:
    """A silence as `gettableSilence`: every time set (the config's may lack some)."""
    starts = shown["startsAt"] or shown["updatedAt"] or format_time(0)
    return {
        **shown,
        "startsAt": starts,
        "endsAt": shown["endsAt"] or _NO_END,
        "updatedAt": shown["updatedAt"] or starts,
    }


# -- routes -----------------------------------------------------------------------------------


def amapi_routes(
    api: AlertmanagerApi,
    silences: SilenceApi,
    *,
    healthy: Callable[[], bool],
    ready: Callable[[], bool],
    reload: Reload | None,
) -> list[Route]:
    """Alertmanager's paths, served beside anomalyd's own `/api/*`."""

    async def answered(handle: Callable[[], Any]) -> Answer:
        """The JSON answer of a handler that waits on nothing (or its ApiError's)."""

        async def call() -> Any:
            return handle()

        return await answer_json(call)

    return [
        Route("/api/v2/status", {"get": lambda request: answered(api.status)}),
        Route("/api/v2/receivers", {"get": lambda request: answered(api.receivers)}),
        Route(
            "/api/v2/alerts", {"get": lambda request: answered(lambda: api.alerts(request.query))}
        ),
        Route(
            "/api/v2/alerts/groups",
            {"get": lambda request: answered(lambda: api.groups(request.query))},
        ),
        Route(
            "/api/v2/silences",
            {
                "get": lambda request: answered(lambda: api.silences(request.query)),
                "post": lambda request: answer_json(lambda: silences.create(request)),
            },
        ),
        Route(
            "/api/v2/silence/{silence_id}",
            {
                "get": lambda request, silence_id: answer_json(lambda: api.silence(silence_id)),
                "delete": lambda request, silence_id: answer_json(
                    lambda: silences.expire(request, silence_id)
                ),
            },
        ),
        Route("/-/healthy", _probe(healthy)),
        Route("/-/ready", _probe(ready)),
        Route("/-/reload", {"post": lambda request: _reload(api, reload, request)}),
    ]


def _probe(check: Callable[[], bool]) -> dict[str, Callable[..., Any]]:
    """Alertmanager's probes answer plain text, to GET and HEAD."""

    async def probe(request: Request) -> Answer:
        if check():
            return Answer(b"OK", kind="bytes", content_type="text/plain")
        return Answer(b"Service Unavailable", 503, kind="bytes", content_type="text/plain")

    return {"get": probe, "head": probe}


async def _reload(api: AlertmanagerApi, reload: Reload | None, request: Request) -> Answer:
    """Ask for a config reload, as SIGHUP does; its outcome shows in `/api/status`."""
    try:
        api.authorize(request)
    except ApiError as error:
        return Answer({"error": error.message}, error.status, headers=error.headers)
    if reload is None:
        return Answer({"error": "this worker runs without a config file to reload"}, 409)
    reload.request("api")
    return Answer({"status": "reload requested"})
