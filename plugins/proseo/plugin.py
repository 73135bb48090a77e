"""The Airflow plugin object, registered through the ``airflow.plugins`` entry point.

Airflow discovers it from the installed package (not from the plugins folder, which
``plugins/.airflowignore`` hides from the file-based loader so no module loads twice).
It carries:

* the /proseo FastAPI app (REST API v1 and our pages), mounted by Airflow's API server;
* links in Airflow's navigation to our pages (``external_views``), shown inside
  Airflow's UI, authenticated by the UI's own token cookie;
* the listeners that keep order states in step with DAG runs (scheduler side).

The FastAPI app is built on first access of ``fastapi_apps`` only, so the scheduler,
the DAG processor and workers, which load plugins for the listeners, never build it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from proseo.orchestration import listeners

PREFIX = "/proseo"


class _LazyApps:
    """``fastapi_apps`` built when the API server first reads it."""

    def __init__(self) -> None:
        self._apps: list[dict[str, Any]] | None = None

    def __get__(self, obj: object, owner: type | None = None) -> list[dict[str, Any]]:
        if self._apps is None:
            from proseo.api.app import create_app

            self._apps = [{"app": create_app(), "url_prefix": PREFIX, "name": "proseo"}]
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
    ]
    # DAG-run listeners run in the scheduler (and inline under dag.test()).
    listeners: ClassVar[list[Any]] = [listeners]
