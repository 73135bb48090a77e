"""Steering an order through the REST API: the catalogue and the Airflow run move together.

An operator in proseo may be a mere viewer in Airflow. The operation must then be
refused before the catalogue changes, not leave a FAILED order whose DAG run goes
on. So every steering operation (suspend, resume, cancel, retry) runs in this order:

1. the transition is checked against the catalogue (read only): an illegal one is a
   409 and Airflow is not called;
2. the first Airflow call, with the caller's own token, is the DAG's paused flag
   (pause or unpause, as the operation needs); Airflow checks the same permission
   ("edit DAG") for every later call, so a refusal here (403, or 502 when Airflow
   cannot be reached) leaves both sides as they were;
3. the catalogue operation commits (one locked transaction, :mod:`proseo.planning.lifecycle`);
   should it refuse now (a concurrent operation), the paused flag is put back;
4. the rest of the Airflow side, where there is one.

Why that order, per operation:

* suspend -- pause, catalogue (SUSPENDING, or PLANNED with force), then with force
  clear the running task instances. Pausing first is harmless: a paused DAG only
  starts no new step, whatever the catalogue says.
* resume -- unpause, then catalogue (RELEASED). The other way round, a refusal would
  leave a RELEASED order whose DAG stays paused. A step starting between the two
  finds its order PLANNED, which the roll-up leaves alone until RELEASED follows.
* cancel -- pause, catalogue (FAILED; unfinished steps FAILED "order cancelled"), then
  mark the active runs failed. Failing the runs must come last: Airflow's run-failed
  listener finalises the order from the catalogue, and before the cancel it would
  fail the order as "job steps failed" and make the cancel itself illegal.
* retry -- unpause (an ``@once`` DAG whose run failed starts nothing by being
  unpaused), catalogue (failed steps PLANNED again, RELEASED), then clear the failed
  and skipped task instances: a cleared task runs at once and must find its step
  PLANNED, not FAILED.

Only a failure of step 4 after Airflow accepted step 2 (a network error, a restarted
server) leaves the two apart; the answer is then a 502 that says what the catalogue
did and what Airflow did not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from proseo.api.airflow_client import AirflowApiError
from proseo.api.airflow_runs import AirflowRuns
from proseo.catalog.db import Catalog
from proseo.errors import ProseoError
from proseo.planning import lifecycle
from proseo.planning import orders as ops
from proseo.planning.states import next_state

log = logging.getLogger(__name__)

OPERATIONS: dict[str, Callable[..., Any]] = {
    "suspend": lifecycle.suspend_order,
    "resume": lifecycle.resume_order,
    "cancel": lifecycle.cancel_order,
    "retry": lifecycle.retry_order,
}
#: The paused flag each operation sets first.
PAUSES = {"suspend": True, "resume": False, "cancel": True, "retry": False}


class AirflowNotConfigured(ProseoError):
    """The app was built without Airflow's address and PROSEO_AIRFLOW_URL is not set."""


class SteeringError(AirflowApiError):
    """Airflow refused (or could not be reached for) a steering call; says what changed."""

    def __init__(self, message: str, *, status: int | None, mission: str, order: str) -> None:
        super().__init__(f"{mission}/{order}: {message}", status=status)
        self.mission = mission
        self.order = order
        #: Airflow refused the caller: answer 403 like Airflow did; anything else is 502.
        self.http_status = 403 if status in (401, 403) else 502


def steer(
    catalog: Catalog,
    mission: str,
    identifier: str,
    operation: str,
    client: AirflowRuns | None,
    *,
    message: str | None,
    force: bool,
) -> str:
    """Run ``operation`` on both sides (see the module doc); what happened in Airflow, for people."""
    run = OPERATIONS[operation]
    with catalog.session() as session:
        order = ops.get_order(session, mission, identifier)
        next_state(operation, order.state, mission=mission, order=identifier, force=force)
        dag_id, state = order.dag_id, order.state
    if client is None or not dag_id:
        run(catalog, mission, identifier, message=message, force=force)
        return "Airflow steering is off in this deployment" if client is None else "no DAG yet"

    def refused(exc: AirflowApiError, what: str) -> SteeringError:
        return SteeringError(
            f"Airflow refused to {what} ({exc}); nothing was changed, the order is still {state}",
            status=exc.status,
            mission=mission,
            order=identifier,
        )

    pause = PAUSES[operation]
    verb = "pause" if pause else "unpause"
    try:
        dag = client.dag(dag_id)
        if dag is None:  # not parsed yet: the factory builds it from the catalogue's state
            run(catalog, mission, identifier, message=message, force=force)
            return f"{dag_id}: not in Airflow yet; it follows the order when it is parsed"
        client.set_paused(dag_id, pause)
    except AirflowApiError as exc:
        raise refused(exc, f"{verb} DAG {dag_id}") from None
    try:
        done = run(catalog, mission, identifier, message=message, force=force)
    except Exception:
        _restore(client, dag_id, bool(dag.get("is_paused")))
        raise
    first = f"{dag_id}: {verb}d"
    try:
        return first + _finish(client, operation, dag_id, force=force)
    except AirflowApiError as exc:
        raise SteeringError(
            f"the order is now {done.state} in the catalogue and Airflow {verb}d DAG {dag_id}, "
            f"but then failed: {exc}",
            status=502,
            mission=mission,
            order=identifier,
        ) from None


def _finish(client: AirflowRuns, operation: str, dag_id: str, *, force: bool) -> str:
    """Step 4: what the operation still needs in Airflow once the catalogue has moved."""
    if operation == "suspend" and force:
        return f", {client.clear_tasks(dag_id, only_running=True)} running task(s) stopped"
    if operation == "cancel":
        failed = client.fail_active_runs(dag_id)
        return f", run(s) {', '.join(failed)} marked failed" if failed else ", no active run"
    if operation == "retry":
        return f", {client.rerun_unfinished(dag_id)} failed or skipped task instance(s) cleared to run again"
    return ""


def _restore(client: AirflowRuns, dag_id: str, paused: bool) -> None:
    try:
        client.set_paused(dag_id, paused)
    except AirflowApiError:  # the catalogue's own error is the one to report
        log.exception("proseo: could not restore the paused flag of %s", dag_id)
