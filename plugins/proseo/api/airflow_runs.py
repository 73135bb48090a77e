"""Steering an order's Airflow DAG run over Airflow's REST API (v2).

The catalogue operation (suspend, resume, cancel, retry) decides what an order may
do; this module makes the order's DAG run follow it, so the CLI, our REST API and
Airflow never disagree about whether job steps run:

* suspend  -> pause the order's DAG: running steps finish, no new step starts;
  ``force`` also clears the running task instances, which stops them now (they run
  again on resume);
* resume   -> unpause the DAG: the same run goes on where it stopped;
* cancel   -> mark the order's unfinished runs failed (Airflow stops running steps)
  and pause the DAG, so a run the scheduler had not created yet never starts;
* retry    -> unpause, clear the failed, upstream-failed and skipped task instances of
  the last run (a cancel skips the steps that had not started), so exactly the steps
  that did not finish run again, in the same run.

The HTTP side (authentication, paging, errors) is :class:`AirflowClient`; no Airflow
import, so the CLI runs anywhere Airflow's API answers.
"""

from __future__ import annotations

from typing import Any

from proseo.api.airflow_client import AirflowApiError, AirflowClient
from proseo.planning.states import STEERING
from proseo.settings import get_settings

ACTIVE_RUN_STATES = ("queued", "running")
#: Task-instance states a retry runs again (an order DAG skips nothing by itself).
RERUN_STATES = ("failed", "upstream_failed", "skipped")

__all__ = ["STEERING", "AirflowApiError", "AirflowRuns"]


class AirflowRuns(AirflowClient):
    """An Airflow client that knows what an order operation means for the order's DAG."""

    @classmethod
    def from_env(cls) -> AirflowRuns | None:
        """The client configured by ``PROSEO_AIRFLOW_URL`` (+ token or user/password), if any."""
        settings = get_settings()
        if not settings.airflow_url:
            return None
        return cls(
            settings.airflow_url.rstrip("/"),
            token=settings.airflow_token,
            username=settings.airflow_user,
            password=settings.airflow_password,
        )

    def set_paused(self, dag_id: str, paused: bool) -> bool:
        """Pause or unpause; False when Airflow does not know the DAG (yet)."""
        try:
            self.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": paused})
        except AirflowApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def fail_active_runs(self, dag_id: str) -> list[str]:
        failed = []
        for run in self.runs(dag_id):
            if run.get("state") in ACTIVE_RUN_STATES:
                path = f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}"
                self.request("PATCH", path, json={"state": "failed"})
                failed.append(str(run["dag_run_id"]))
        return failed

    def clear_tasks(self, dag_id: str, *, only_running: bool = False) -> int:
        """Clear task instances of the newest run; the number cleared."""
        runs = self.runs(dag_id)
        if not runs:
            return 0
        return self._clear(dag_id, {"dag_run_id": runs[0]["dag_run_id"], "only_running": only_running})

    def rerun_unfinished(self, dag_id: str) -> int:
        """Clear the newest run's failed, upstream-failed and skipped task instances.

        Skipped counts too: failing a run through the API skips the steps that had not
        started yet, and a retry must run those as well, or the run could end "success"
        with steps that never ran.
        """
        runs = self.runs(dag_id)
        if not runs:
            return 0
        run_id = str(runs[0]["dag_run_id"])
        targets: list[str | list[Any]] = []
        for ti in self.task_instances(dag_id, run_id, RERUN_STATES):
            index = int(ti.get("map_index", -1))
            targets.append([ti["task_id"], index] if index >= 0 else str(ti["task_id"]))
        if not targets:
            return 0
        return self._clear(dag_id, {"dag_run_id": run_id, "task_ids": targets, "only_failed": False})

    def _clear(self, dag_id: str, body: dict[str, Any]) -> int:
        body = {"dry_run": False, "only_failed": False, "reset_dag_runs": True, **body}
        answer = self.request("POST", f"/api/v2/dags/{dag_id}/clearTaskInstances", json=body)
        return int((answer or {}).get("total_entries", 0))

    # -- what an order operation means for its run ---------------------------------------------

    def follow(self, operation: str, dag_id: str | None, *, force: bool = False) -> str:
        """Make the order's DAG run follow ``operation``; returns what was done, for people."""
        if not dag_id:
            return "no DAG yet: nothing to do in Airflow"
        if operation == "suspend":
            known = self.set_paused(dag_id, True)
            if not known:
                return f"{dag_id}: not in Airflow yet; it will not start while the order is suspended"
            stopped = self.clear_tasks(dag_id, only_running=True) if force else 0
            return f"{dag_id}: paused" + (f", {stopped} running task(s) stopped" if force else "")
        if operation == "resume":
            known = self.set_paused(dag_id, False)
            return f"{dag_id}: unpaused" if known else f"{dag_id}: not in Airflow yet; it starts when parsed"
        if operation == "cancel":
            # Paused first: the scheduler cannot create a run between the two calls.
            known = self.set_paused(dag_id, True)
            failed = self.fail_active_runs(dag_id)
            done = f"run(s) {', '.join(failed)} marked failed" if failed else "no active run"
            return f"{dag_id}: {done}" + ("; paused, no new run starts" if known else "")
        if operation == "retry":
            self.set_paused(dag_id, False)
            cleared = self.rerun_unfinished(dag_id)
            return f"{dag_id}: {cleared} failed or skipped task instance(s) cleared to run again"
        return f"{dag_id}: nothing to do in Airflow for {operation}"
