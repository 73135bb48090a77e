"""Run released orders' DAGs with ``dag.test()`` against a catalogue, without a scheduler.

Used by the orchestration tests and for trying an order locally: it prepares an
Airflow home (SQLite, the repository's ``dags/`` folder), builds each order's DAG
through the real shard files, runs it in-process and prints one JSON line per order
with the run's state and the task-instance states. Airflow reads ``AIRFLOW_HOME`` on
first import, so this runs as its own process (``python -m proseo.devtools.dagtest``).

    python -m proseo.devtools.dagtest --airflow-home DIR --dags DIR DAG_ID [DAG_ID ...]

Output: one JSON object per DAG on stdout, ``{"dag_id", "state" ("success" or "failed"),
"seconds", "task_instances" (count per state), "durations" and "ended" (per task
instance), "asset_events", "pools"}``. Exit status: 0 when every run succeeded,
:data:`EXIT_RUN_FAILED` (3) when a run ended otherwise (its line is still printed; the
order's state and its job steps' reasons are in the catalogue: ``proseo order show``),
1 for an error before any run. The first run in a fresh Airflow home migrates its
database (about half a minute); later runs reuse it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

#: Exit status when a DAG run did not succeed.
EXIT_RUN_FAILED = 3


def prepare_home(home: Path, dags: Path) -> dict[str, str]:
    """Environment for an isolated Airflow home; migrates its database once."""
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING"),
    }
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "airflow.db").exists():
        airflow = Path(sys.executable).with_name("airflow")
        subprocess.run(
            [str(airflow), "db", "migrate"], env={**os.environ, **env}, check=True, stdout=subprocess.DEVNULL
        )
    return env


def run(dag_ids: list[str], dags: Path) -> list[dict[str, object]]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dags))
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {bag.import_errors}")
    results = []
    for dag_id in dag_ids:
        dag = bag.get_dag(dag_id)
        if dag is None:
            raise SystemExit(f"no DAG {dag_id} (found: {sorted(bag.dag_ids)})")
        # dag.test() creates its run already running, so the scheduler's run-start listener
        # (which creates the facility pool) does not fire: call it as the scheduler would.
        from types import SimpleNamespace

        from proseo.orchestration.listeners import ensure_pool

        ensure_pool(SimpleNamespace(dag_id=dag_id, run_id="dagtest"))
        # Airflow 3.3's dag.test() schedules a copy serialized in memory, whose deadline
        # alerts are not stored (no alert ids), and fails the finished run looking them up.
        # No scheduler evaluates deadlines here anyway: drop them (the weights stay).
        dag.deadline = None
        t0 = time.perf_counter()
        run_ = dag.test()
        states: dict[str, int] = {}
        durations: dict[str, float] = {}
        ended: dict[str, str] = {}
        for ti in run_.get_task_instances():
            states[str(ti.state)] = states.get(str(ti.state), 0) + 1
            if ti.start_date and ti.end_date:
                key = f"{ti.task_id}[{ti.map_index}]"
                durations[key] = round((ti.end_date - ti.start_date).total_seconds(), 2)
                ended[key] = ti.end_date.isoformat()
        results.append(
            {
                "dag_id": dag_id,
                "state": str(run_.state),
                "seconds": round(time.perf_counter() - t0, 1),
                "task_instances": states,
                "durations": durations,
                "ended": ended,
                "asset_events": _asset_events(dag_id),
                "pools": _pools(),
            }
        )
    return results


def _asset_events(dag_id: str) -> dict[str, list[dict[str, object]]]:
    """Asset events the run emitted, by asset URI (what asset-scheduled DAGs would see)."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    out: dict[str, list[dict[str, object]]] = {}
    with create_session() as session:
        rows = session.execute(
            select(AssetModel.uri, AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetEvent.source_dag_id == dag_id)
        )
        for uri, extra in rows:
            out.setdefault(uri, []).append(dict(extra or {}))
    return out


def _pools() -> dict[str, int]:
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return dict(session.execute(select(Pool.pool, Pool.slots).where(Pool.pool.like("proseo__%"))).all())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="Prints one JSON line per DAG run; exits 0 when every run succeeded, "
        f"{EXIT_RUN_FAILED} when one did not.",
    )
    parser.add_argument("--airflow-home", type=Path, required=True, help="Airflow home to use (created)")
    parser.add_argument("--dags", type=Path, required=True, help="the DAG folder (the repository's dags/)")
    parser.add_argument("dag_ids", nargs="+", help="proseo__<MISSION>__<ORDER> of released orders")
    args = parser.parse_args()
    args.airflow_home, args.dags = args.airflow_home.absolute(), args.dags.absolute()
    if os.environ.get("AIRFLOW_HOME") != str(args.airflow_home):
        env = prepare_home(args.airflow_home, args.dags)
        os.execve(
            sys.executable,
            [sys.executable, "-m", "proseo.devtools.dagtest", *sys.argv[1:]],
            {**os.environ, **env},
        )
    failed = []
    for result in run(args.dag_ids, args.dags):
        print(json.dumps(result), flush=True)
        if result["state"] != "success":
            failed.append(f"{result['dag_id']}: {result['state']}")
    if failed:
        print("DAG run(s) did not succeed: " + "; ".join(failed), file=sys.stderr)
        sys.exit(EXIT_RUN_FAILED)


if __name__ == "__main__":
    main()
