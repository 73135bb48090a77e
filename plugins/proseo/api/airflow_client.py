"""The one client of Airflow's REST API (v2) in proseo.

Order steering (:mod:`proseo.api.airflow_runs`), the standalone launcher, the demo,
the end-to-end tests and the schedule bench all talk to Airflow through this class, so
authentication, paging and error reporting are written once.

Plain HTTP (httpx), no Airflow import: it runs anywhere Airflow's API answers.
Authentication is a JWT, given, or fetched from ``POST /auth/token`` with a user name
and password (fetched again once when Airflow answers 401, i.e. it expired).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from proseo.errors import ProseoError

PAGE = 100  # Airflow's default maximum page size
TERMINAL_RUN_STATES = ("success", "failed")


class AirflowApiError(ProseoError):
    """Airflow's API refused or could not be reached; names the call and the answer."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status Airflow answered with; None if unreachable


@dataclass
class AirflowClient:
    base_url: str
    token: str | None = None
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0

    # -- plumbing ------------------------------------------------------------------------------

    def bearer(self, *, refresh: bool = False) -> str:
        """The JWT: the one given, or one fetched with the user name and password."""
        if self.token and not refresh:
            return self.token
        if not (self.username and self.password):
            raise AirflowApiError(
                f"{self.base_url}: no Airflow credentials (set PROSEO_AIRFLOW_TOKEN, "
                "or PROSEO_AIRFLOW_USER and PROSEO_AIRFLOW_PASSWORD)"
            )
        body = {"username": self.username, "password": self.password}
        answer = self._send("POST", "/auth/token", json=body, auth=False)
        self.token = str(answer["access_token"])
        return self.token

    def request(self, method: str, path: str, **kw: Any) -> Any:
        """One call (``json=``, ``params=``, ``timeout=``); the decoded JSON answer."""
        try:
            return self._send(method, path, **kw)
        except AirflowApiError as exc:
            if exc.status != 401 or not (self.username and self.password):
                raise
            self.bearer(refresh=True)  # the fetched token expired
            return self._send(method, path, **kw)

    def _send(self, method: str, path: str, *, auth: bool = True, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.bearer()}"} if auth else {}
        url = self.base_url + path
        kw.setdefault("timeout", self.timeout)
        try:
            response = httpx.request(method, url, headers=headers, **kw)
        except httpx.HTTPError as exc:
            raise AirflowApiError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise AirflowApiError(
                f"{method} {url}: HTTP {response.status_code}: {response.text[:2000]}",
                status=response.status_code,
            )
        return response.json() if response.content else None

    # -- Assets -----------------------------------------------------------------------------------

    def asset_event(self, uri: str, extra: Mapping[str, Any]) -> bool:
        """Create an event of the Asset with this URI (its consumers' DAGs run); False when
        Airflow knows no such Asset (no DAG reads or writes it)."""
        found = self.request("GET", "/api/v2/assets", params={"uri_pattern": uri, "limit": PAGE})
        ids = [a["id"] for a in (found or {}).get("assets", []) if a.get("uri") == uri]
        if not ids:
            return False
        self.request("POST", "/api/v2/assets/events", json={"asset_id": ids[0], "extra": dict(extra)})
        return True

    # -- DAGs, runs, task instances ------------------------------------------------------------

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        """The DAG's record; None while Airflow does not know it."""
        try:
            return dict(self.request("GET", f"/api/v2/dags/{dag_id}"))
        except AirflowApiError as exc:
            if exc.status == 404:
                return None
            raise

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's runs, newest first (an empty list when the DAG is not known yet)."""
        params = {"order_by": "-run_after", "limit": PAGE}
        try:
            answer = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns", params=params)
        except AirflowApiError as exc:
            if exc.status == 404:
                return []
            raise
        return list(answer.get("dag_runs", []))

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Start a run now; the new run."""
        body = {"logical_date": None, "conf": dict(conf or {})}
        return dict(self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body))

    def task_instances(
        self, dag_id: str, run_id: str, states: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """The run's task instances (mapped ones included), optionally only in ``states``."""
        found: list[dict[str, Any]] = []
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        while True:
            params: dict[str, Any] = {"limit": PAGE, "offset": len(found)}
            if states:
                params["state"] = list(states)
            page = self.request("GET", path, params=params)
            rows = page.get("task_instances", [])
            found.extend(rows)
            if not rows or len(found) >= int(page.get("total_entries", 0)):
                return found

    # -- waiting -------------------------------------------------------------------------------

    def wait_for_dag(self, dag_id: str, timeout: float = 180.0) -> dict[str, Any]:
        """Wait until the DAG processor has registered ``dag_id``; its record."""
        return _poll(lambda: self.dag(dag_id), timeout, 1.0, f"DAG {dag_id} is not in Airflow")

    def wait_for_first_run(self, dag_id: str, timeout: float = 180.0) -> dict[str, Any]:
        """Wait until the scheduler has created a run of ``dag_id``; that run."""
        found = _poll(lambda: self.runs(dag_id), timeout, 1.0, f"DAG {dag_id}: no run")
        return found[-1]

    def wait_for_run(
        self,
        dag_id: str,
        run_id: str | None = None,
        *,
        timeout: float = 3600.0,
        poll: float = 2.0,
        alive: Callable[[], bool] | None = None,
    ) -> dict[str, Any]:
        """Wait until the run (default: the DAG's first run) has ended; the run.

        ``alive`` (e.g. "is the Airflow process still there") ends the wait early.
        """
        wanted = run_id

        def ended() -> dict[str, Any] | None:
            nonlocal wanted
            if alive is not None and not alive():
                raise AirflowApiError(f"{self.base_url}: Airflow is gone while waiting for {dag_id}")
            runs = self.runs(dag_id)
            if wanted is None and runs:
                wanted = runs[-1]["dag_run_id"]
            run = next((r for r in runs if r["dag_run_id"] == wanted), None)
            return run if run is not None and run["state"] in TERMINAL_RUN_STATES else None

        return _poll(ended, timeout, poll, f"DAG {dag_id}: run {run_id or '(first)'} has not ended")


def _poll(probe: Callable[[], Any], timeout: float, every: float, what: str) -> Any:
    """``probe()`` until it returns something truthy; AirflowApiError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        if time.monotonic() > deadline:
            raise AirflowApiError(f"{what} after {timeout:.0f} s")
        time.sleep(every)
    return found
