"""Every HTTP route of the worker, in one place. The composition (`worker/app.py`)
serves this list through Faust's web server.

- `/healthz`: liveness; fails once a service crashed (the worker is exiting);
- `/readyz`: ready to judge (state restored, broker reachable);
- `/metrics`: Prometheus;
- `/api/status` (`status.py`), `/api/drift`;
- `/api/silences`, `/api/silences/{silence_id}` (`silences.py`);
- `/api/alerts`, `/api/alerts/{fingerprint}`, `/api/alerts/{fingerprint}/feedback`
  (`alerts.py`);
- Alertmanager's API v2 (`/api/v2/...`) and probes (`/-/healthy`, `/-/ready`,
  `/-/reload`) (`amapi.py`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

from prometheus_client import generate_latest

from anomalyd.metrics import Metrics
from anomalyd.pipeline import Pipeline
from anomalyd.worker.http.alerts import AlertsApi, check_link, click_page
from anomalyd.worker.http.amapi import AlertmanagerApi, Reload, amapi_routes
from anomalyd.worker.http.silences import SilenceApi
from anomalyd.worker.http.status import Lag, Owners, Reloads, status_page
from anomalyd.worker.http.web import Answer, Request, Route, answer_json


class WorkerState(Protocol):
    """What the pages read of the worker's detection (`detection.runtime.Runtime`)."""

    @property
    def pipeline(self) -> Pipeline: ...

    @property
    def serving(self) -> bool: ...

    @property
    def crashed_with(self) -> str | None: ...

    @property
    def drift_history(self) -> deque[dict[str, object]]: ...

    @property
    def metrics(self) -> Metrics: ...

    def refresh_gauges(self) -> None: ...


def routes(
    detection: WorkerState,
    *,
    silences: SilenceApi,
    alerts: AlertsApi,
    alertmanager: AlertmanagerApi,
    reloads: Reloads | None,
    reload: Reload | None,
    owners: Owners | None,
    lag: Lag,
    app_crashed: Callable[[], bool],
) -> list[Route]:
    """The worker's routes: path -> method -> handler."""
    return [
        Route("/healthz", {"get": lambda request: _healthz(detection, app_crashed())}),
        Route("/readyz", {"get": lambda request: _readyz(detection)}),
        Route("/metrics", {"get": lambda request: _metrics(detection)}),
        Route("/api/drift", {"get": lambda request: _drift(detection, request)}),
        Route(
            "/api/status",
            {"get": lambda request: status_page(request, detection, reloads, lag, owners)},
        ),
        *_silence_routes(silences),
        *_alert_routes(alerts),
        *amapi_routes(
            alertmanager,
            silences,
            healthy=lambda: detection.crashed_with is None and not app_crashed(),
            ready=lambda: detection.serving,
            reload=reload,
        ),
    ]


def _silence_routes(api: SilenceApi) -> list[Route]:
    async def listed(request: Request) -> Answer:
        return Answer(api.list())

    return [
        Route(
            "/api/silences",
            {"get": listed, "post": lambda request: answer_json(lambda: api.create(request))},
        ),
        Route(
            "/api/silences/{silence_id}",
            {
                "get": lambda request, silence_id: answer_json(lambda: api.get(silence_id)),
                "delete": lambda request, silence_id: answer_json(
                    lambda: api.expire(request, silence_id)
                ),
            },
        ),
    ]


def _alert_routes(api: AlertsApi) -> list[Route]:
    async def head(request: Request, fingerprint: str) -> Answer:
        return check_link(api, fingerprint, request.query)

    return [
        Route("/api/alerts", {"get": lambda request: answer_json(lambda: api.list(request.query))}),
        Route(
            "/api/alerts/{fingerprint}",
            {"get": lambda request, fingerprint: answer_json(lambda: api.get(fingerprint))},
        ),
        Route(
            "/api/alerts/{fingerprint}/feedback",
            {
                "post": lambda request, fingerprint: answer_json(
                    lambda: api.post_feedback(request, fingerprint), 202
                ),
                "get": lambda request, fingerprint: click_page(api, fingerprint, request.query),
                "head": head,
            },
        ),
    ]


async def _healthz(detection: WorkerState, app_crashed: bool) -> Answer:
    # Liveness: a crashed worker may take a while to exit (`shutdown.py`); it must not
    # look alive meanwhile.
    if detection.crashed_with is not None or app_crashed:
        reason = detection.crashed_with or "a service crashed"
        return Answer({"status": "crashed", "reason": reason[:200]}, 503)
    return Answer({"status": "ok"})


async def _readyz(detection: WorkerState) -> Answer:
    if detection.serving:
        return Answer({"status": "ready"})
    return Answer({"status": "not ready"}, 503)


async def _drift(detection: WorkerState, request: Request) -> Answer:
    """Each stream's latest closed windows (one per field); `?stream=NAME` for that
    stream's recent history, oldest first."""
    monitor = detection.pipeline.drift
    if monitor is None:
        return Answer({"enabled": False, "streams": {}})
    wanted = request.query.get("stream")
    if wanted is not None:
        history = [body for body in detection.drift_history if body.get("stream") == wanted]
        return Answer({"enabled": True, "stream": wanted, "windows": history})
    latest = {
        name: [record.to_json() for record in records] for name, records in monitor.latest().items()
    }
    return Answer({"enabled": True, "streams": latest, "windows": monitor.coverage()})


async def _metrics(detection: WorkerState) -> Answer:
    detection.refresh_gauges()
    # aiohttp takes the charset apart from the content type.
    body = generate_latest(detection.metrics.registry)
    return Answer(body, kind="bytes", content_type="text/plain; version=0.0.4")
