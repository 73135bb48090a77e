"""The Airflow plugin object, registered through the ``airflow.plugins`` entry point.

Airflow discovers it from the installed package (not from the plugins folder, which
``plugins/.airflowignore`` hides from the file-based loader so no module loads twice).
It carries:

* the /proseo FastAPI app (REST API v1 and our pages), mounted by Airflow's API server;
* links in Airflow's navigation to our pages (``external_views``), shown inside
  Airflow's UI, authenticated by the UI's own token cookie;
* the listeners that keep order states in step with DAG runs (scheduler side);
* the priority-weight strategy of orders with a deadline
  (:class:`~proseo.orchestration.urgency.SlackPriorityStrategy`): Airflow refuses to
  serialize a DAG whose strategy no plugin registers.

The FastAPI app is built on first access of ``fastapi_apps`` only, so the scheduler,
the DAG processor and workers, which load plugins for the listeners, never build it.
It steers order runs through Airflow's own REST API at :func:`airflow_base_url`, an
address from the configuration, never from a request.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from proseo.orchestration import listeners
from proseo.orchestration.urgency import SlackPriorityStrategy

PREFIX = "/proseo"


def airflow_base_url() -> str:
    """Where this Airflow's REST API answers: ``PROSEO_AIRFLOW_URL``, else ``[api] base_url``,
    else the API server's own port on the loopback interface."""
    from airflow.configuration import conf

    from proseo.settings import get_settings

    configured = get_settings().airflow_url or conf.get("api", "base_url", fallback=None) or ""
    if configured.startswith(("http://", "https://")):
        return configured.rstrip("/")
    host = conf.get("api", "host", fallback="0.0.0.0")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{conf.get('api', 'port', fallback='8080')}"


class _LazyApps:
    """``fastapi_apps`` built when the API server first reads it."""

    def __init__(self) -> None:
        self._apps: list[dict[str, Any]] | None = None

    def __get__(self, obj: object, owner: type | None = None) -> list[dict[str, Any]]:
        if self._apps is None:
            from proseo.api.app import create_app

            app = create_app(airflow_url=airflow_base_url())
            self._apps = [{"app": app, "url_prefix": PREFIX, "name": "proseo"}]
        return self._apps


def _view(name: str, page: str) -> dict[str, Any]:
    return {
        "name": name,
        "href": f"{PREFIX}/ui/{page}",
        "destination": "nav",
        "category": "proseo",
        "url_route": f"proseo-{page}",
    }


class ProseoPlugin(AirflowPlugin):
    name = "proseo"
    fastapi_apps = _LazyApps()  # type: ignore[assignment]
    external_views: ClassVar[list[dict[str, Any]]] = [
        _view("Orders", "orders"),
        _view("Products", "products"),
        _view("Timeliness", "kpi"),
        _view("Campaigns", "campaigns"),
    ]
    # DAG-run listeners run in the scheduler (and inline under dag.test()).
    listeners: ClassVar[list[Any]] = [listeners]
    priority_weight_strategies: ClassVar[list[Any]] = [SlackPriorityStrategy]
