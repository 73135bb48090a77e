"""JobStepPodOperator: the factory's processor task on a Kubernetes facility, without a cluster.

One S5P order on the ``cloud`` facility is planned; the operator, made with the
job step id only, starts the step in the catalogue (the step task's ``begin``) and
configures its pod from the step's context; a manifest fed to its completion path
registers the products (COMPLETED); a FAILED one fails the task and marks the step
FAILED on the final try only.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from kubernetes.client import ApiClient
from sqlalchemy import select
from tests_execution_helpers import (
    COLLECTION,
    ingest,
    l1b_window,
    orbit_inside,
    plan,
    plan_cloud_l1b,
    steps_of,
)

from proseo.catalog.db import Catalog
from proseo.catalog.model_order import JobStep, StepState
from proseo.catalog.model_product import Product
from proseo.catalog.register import RunIdentity
from proseo.execution import build_job_spec, steptask
from proseo.execution.kubernetes import JobStepPodOperator
from proseo.execution.local import JobStepOperator
from proseo.orchestration.factory import build_dag
from proseo.planning.blueprint import Blueprint
from proseo.wrapper.spec import Manifest, Status

from tests_paths import REPO
from tests_registration import manifest_product, planned_outputs

TASK_ID = "level_0_run"
RUN = RunIdentity(dag_id="proseo__s5p__cloud-l1b", run_id="r1", task_id=TASK_ID, try_number=1, map_index=0)


@pytest.fixture
def cloud_step(s5p_cat: Catalog, tmp_path: Path) -> int:
    return plan_cloud_l1b(s5p_cat, tmp_path)


def _operator(catalog: Catalog, step: int) -> JobStepPodOperator:
    return JobStepPodOperator(task_id=TASK_ID, job_step_id=step, mission="S5P", catalog_url=catalog.url)


def _rendered(op: Any) -> dict[str, Any]:
    pod = ApiClient().sanitize_for_serialization(op.build_pod_request_obj(context=None, dry_run=True))
    name = pod["metadata"].pop("name")
    return {"name_prefix": name.rsplit("-", 1)[0], **pod}


def _state(catalog: Catalog, step: int) -> tuple[str, str | None]:
    with catalog.session() as s:
        js = s.get(JobStep, step)
        return js.state, js.failure_reason


def _manifest(catalog: Catalog, step: int, status: Status = Status.SUCCESS) -> dict[str, Any]:
    with catalog.session() as s:
        planned = planned_outputs(s, step)
    products = [
        manifest_product(o, f"s3://s5p-products/{o['key']}", 3, "0" * 32, f"{n:064x}")
        for n, o in enumerate(planned)
    ]
    if status is Status.FAILED:
        return Manifest(
            job_step_id=step, status=status, exit_code=3, stage="run", reason="processor crashed"
        ).model_dump(mode="json")
    return Manifest(job_step_id=step, status=status, exit_code=0, products=products).model_dump(mode="json")


def _begin(catalog: Catalog, op: JobStepPodOperator, try_number: int = 1) -> None:
    """What execute() does before the pod starts."""
    ctx = steptask.begin(
        catalog, int(op.job_step_id), task_id=TASK_ID, try_number=try_number, backend=op.backend
    )
    op.configure(ctx)


def _ti(try_number: int, max_tries: int) -> SimpleNamespace:
    return SimpleNamespace(task_id=TASK_ID, try_number=try_number, max_tries=max_tries)


def test_the_operator_asks_for_the_steps_pod(s5p_cat: Catalog, cloud_step: int) -> None:
    with s5p_cat.session() as s:
        ctx = build_job_spec(s, cloud_step, try_number=1)
    direct = _operator(s5p_cat, cloud_step)
    direct.configure(ctx)
    want = _rendered(direct)

    op = _operator(s5p_cat, cloud_step)
    assert op.image is None and op.env_vars == []  # nothing of the step before it runs
    assert op.deferrable is True and op.durable is True and op.do_xcom_push is True
    _begin(s5p_cat, op)
    got = _rendered(op)
    assert got == want
    assert got["name_prefix"] == f"proseo-s5p-{cloud_step}"
    base = got["spec"]["containers"][0]
    assert base["image"] == "proseo/s5p-l01b:2.10.0"
    assert base["args"] == ["run", "--spec-env", "PROSEO_JOB_SPEC", "--xcom", "/airflow/xcom/return.json"]
    assert base["resources"]["limits"] == {"cpu": "2", "memory": "4Gi"}
    assert got["spec"]["activeDeadlineSeconds"] == 2 * 3600 + 600
    assert got["metadata"]["namespace"] == "s5p-processing"
    assert got["spec"]["securityContext"]["runAsUser"] == 10001
    # begin started the step
    assert _state(s5p_cat, cloud_step) == (StepState.RUNNING.value, None)
    with s5p_cat.session() as s:
        js = s.get(JobStep, cloud_step)
        assert (js.task_id, js.try_number) == (TASK_ID, 1)


def test_a_caller_setting_wins_over_the_defaults(s5p_cat: Catalog, cloud_step: int) -> None:
    op = JobStepPodOperator(
        task_id=TASK_ID, job_step_id=cloud_step, mission="S5P", deferrable=False, get_logs=False
    )
    _begin(s5p_cat, op)
    assert op.deferrable is False and op.get_logs is False
    assert op.image == "proseo/s5p-l01b:2.10.0"


def test_pending_upstream_changes_nothing(s5p_cat: Catalog, cloud_step: int, monkeypatch) -> None:
    monkeypatch.setattr(steptask, "upstream", lambda session, step_id: [(999, StepState.READY.value)])
    op = _operator(s5p_cat, cloud_step)
    with pytest.raises(AirflowException, match=r"upstream job step\(s\) \[999\] have not completed") as info:
        _begin(s5p_cat, op)
    assert not isinstance(info.value, AirflowFailException)  # retried: the upstream step may finish
    assert _state(s5p_cat, cloud_step)[0] != StepState.RUNNING.value
    assert op.image is None


def test_a_local_facility_is_refused(s5p_cat: Catalog, tmp_path: Path) -> None:
    ingest(s5p_cat, "S5P", *l1b_window(), tmp_path)
    orbit = orbit_inside(s5p_cat, *l1b_window())
    plan(
        s5p_cat,
        "S5P",
        requested_classes=["L1B_______"],
        orbit_from=orbit,
        orbit_to=orbit,
        output_parameters=COLLECTION,
    )
    (step,) = steps_of(s5p_cat)["L1B_______"]
    with pytest.raises(AirflowFailException, match=r"facility local uses backend 'local', this task runs"):
        _begin(s5p_cat, _operator(s5p_cat, step))
    assert _state(s5p_cat, step) == (StepState.PLANNED.value, None)


def test_a_manifest_registers_the_products(s5p_cat: Catalog, cloud_step: int) -> None:
    op = _operator(s5p_cat, cloud_step)
    _begin(s5p_cat, op)
    manifest = _manifest(s5p_cat, cloud_step)
    result = op.complete(manifest, run=RUN)
    assert result["job_step_id"] == cloud_step and result["status"] == "SUCCESS"
    assert len(result["product_ids"]) == len(manifest["products"]) > 0
    assert _state(s5p_cat, cloud_step) == (StepState.COMPLETED.value, None)
    with s5p_cat.session() as s:
        made = s.scalars(select(Product).where(Product.job_step_id == cloud_step)).all()
        assert sorted(p.id for p in made) == result["product_ids"]
    # idempotent: a repeated completion registers nothing new
    assert op.complete(manifest, run=RUN)["product_ids"] == result["product_ids"]


def test_a_failed_manifest_fails_the_step(s5p_cat: Catalog, cloud_step: int) -> None:
    op = _operator(s5p_cat, cloud_step)
    _begin(s5p_cat, op)
    with pytest.raises(AirflowException, match="failed at run: processor crashed"):
        op.complete(_manifest(s5p_cat, cloud_step, Status.FAILED), run=RUN)  # no task instance: final
    assert _state(s5p_cat, cloud_step) == (StepState.FAILED.value, "run: processor crashed")
    with s5p_cat.session() as s:
        assert s.get(JobStep, cloud_step).exit_code == 3


def test_a_failed_pod_records_its_manifest(s5p_cat: Catalog, cloud_step: int) -> None:
    """The wrapper exits non-zero on a FAILED run, so the provider raises in
    post_complete_action; the manifest it hands over is recorded on the step first: a
    note while Airflow retries, FAILED on the last try."""
    op = _operator(s5p_cat, cloud_step)
    _begin(s5p_cat, op)
    failed = _manifest(s5p_cat, cloud_step, Status.FAILED)
    error = op.manifest_failure(failed, {"ti": _ti(1, max_tries=2)})
    assert isinstance(error, AirflowException) and not isinstance(error, AirflowFailException)
    assert _state(s5p_cat, cloud_step) == (
        StepState.RUNNING.value,
        "try 1 failed: run: processor crashed; Airflow retries it",
    )
    _begin(s5p_cat, op, try_number=3)
    op.manifest_failure(failed, {"ti": _ti(3, max_tries=2)})
    assert _state(s5p_cat, cloud_step) == (StepState.FAILED.value, "run: processor crashed")
    assert op.manifest_failure(_manifest(s5p_cat, cloud_step), {"ti": _ti(3, max_tries=2)}) is None


def test_no_manifest_is_an_error(s5p_cat: Catalog, cloud_step: int) -> None:
    op = _operator(s5p_cat, cloud_step)
    with pytest.raises(AirflowException, match="without a manifest"):
        op.complete(None, run=RUN)
    with pytest.raises(AirflowException, match="no manifest"):
        op.complete({"what": "ever"}, run=RUN)


def _blueprint(backend: str) -> Blueprint:
    return Blueprint.model_validate(
        {
            "dag_id": f"proseo__s5p__o-{backend}",
            "mission": "S5P",
            "order": f"o-{backend}",
            "priority": 50,
            "backend": backend,
            "pool": None,
            "input_timeout_s": None,
            "on_input_timeout": None,
            "levels": [
                {"steps": [1, 2], "classes": ["L1B_______"], "waiting": []},
                {"steps": [3, 4], "classes": ["L2__O3____"], "waiting": [4]},
            ],
            "job_steps": 4,
        }
    )


def test_factory_maps_pod_operators_for_kubernetes() -> None:
    dag = build_dag(_blueprint("kubernetes"))
    run, process = dag.get_task("level_0_run"), dag.get_task("level_1_wait.process")
    for task in (run, process, dag.get_task("level_1_run")):
        assert task.operator_class is JobStepPodOperator or issubclass(
            getattr(task, "operator_class", type(task)), JobStepPodOperator
        )
    assert run.expand_input.value == {"job_step_id": [1, 2]}
    local = build_dag(_blueprint("local"))
    assert local.get_task("level_0_run").operator_class is JobStepOperator


def test_factory_does_not_load_the_provider_for_local_orders() -> None:
    probe = (
        "import sys\n"
        "from proseo.orchestration.factory import build_dag\n"
        "from proseo.planning.blueprint import Blueprint\n"
        f"bp = Blueprint.model_validate({_blueprint('local').as_json()!r})\n"
        "build_dag(bp)\n"
        "print(sorted(m for m in sys.modules if m.startswith("
        "('airflow.providers.cncf.kubernetes.operators', 'kubernetes.', 'proseo.execution.kubernetes'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
