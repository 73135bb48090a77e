"""Start DAG runs the way the scheduler does, in ONE session, then commit (run as a script).

The scheduler loads queued runs into its session, sets each RUNNING and calls the
run-start listeners (``notify_dagrun_state_changed``) for all of them before it commits
once. Run with ``AIRFLOW_HOME`` (migrated) and ``PROSEO_CATALOG_URL`` set; the arguments
are DAG ids. Prints one JSON line per round: what the commit did and the proseo pools.
"""

from __future__ import annotations

import json
import sys

from airflow.models.dagrun import DagRun
from airflow.models.pool import Pool
from airflow.settings import Session
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState
from sqlalchemy import select

from proseo.orchestration.listeners import on_dag_run_running


def start_runs(dag_ids: list[str]) -> str:
    session = Session()  # the scheduler's kind of session: no autoflush, one commit at the end
    try:
        runs = session.scalars(select(DagRun).where(DagRun.dag_id.in_(dag_ids))).all()
        assert len(runs) == len(dag_ids)
        for run in runs:
            run.state = DagRunState.RUNNING
            on_dag_run_running(dag_run=run, msg="started")
        session.commit()
        return "committed"
    except Exception as exc:  # what would kill the scheduler
        session.rollback()
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    finally:
        session.close()


def main(dag_ids: list[str]) -> None:
    with create_session() as session:
        for dag_id in dag_ids:
            session.add(DagRun(dag_id=dag_id, run_id="scheduled__1", run_type="scheduled", state="queued"))
    for round_ in ("first start", "after a restart"):
        outcome = start_runs(dag_ids)
        with create_session() as session:
            query = select(Pool.pool, Pool.slots).where(Pool.pool.like("proseo__%"))
            pools = dict(session.execute(query).all())
        print(json.dumps({"round": round_, "outcome": outcome, "pools": pools}), flush=True)
        with create_session() as session:  # the scheduler starts them again after a restart
            for run in session.scalars(select(DagRun).where(DagRun.dag_id.in_(dag_ids))):
                run.state = DagRunState.QUEUED


if __name__ == "__main__":
    main(sys.argv[1:])
