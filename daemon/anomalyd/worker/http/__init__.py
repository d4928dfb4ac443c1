"""The worker's HTTP API: every route is listed in `routes.py`.

Owns: the web protocol (`web.py`: a request to read, an answer to give, a route), the
silences API (`silences.py`), the alerts and feedback API (`alerts.py`), Alertmanager's
API v2 (`amapi.py`), the status page (`status.py`) and the route list (`routes.py`).

May import: the core packages (`config`, `domain`, `decide`, `notify`, `pipeline`,
`metrics`). Not Faust, nor the other wings: what the pages read of the worker is a
protocol (`routes.WorkerState`, `silences.SilenceStore`, `alerts.AlertHistory`, ...); the
composition serves the routes through Faust's web server.
"""
