"""The pods the Kubernetes backend asks for, checked field by field without a cluster.

Both sample missions are onboarded, fed generated inputs and given an order on their
Kubernetes facility; the factory's JobStepPodOperator, configured for the job step,
then renders its pod with ``build_pod_request_obj(context=None, dry_run=True)`` (no
kubeconfig needed).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from kubernetes.client import ApiClient
from tests_execution_helpers import (
    DAY,
    ingest,
    onboard,
    plan,
    plan_cloud_l1b,
    register_outputs,
    sample_context,
    steps_of,
)

from proseo.catalog.db import Catalog
from proseo.execution import ExecutionError, StepContext, build_job_spec
from proseo.execution.kubernetes import JobStepPodOperator
from proseo.wrapper.spec import JobSpec
from tests_k8s import schema_errors

from tests_paths import REPO

TEMPLATE = REPO / "deploy" / "kubernetes" / "processor-pod-template.yaml"

HARDENED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
}
POD_SECURITY = {
    "fsGroup": 10001,
    "runAsGroup": 10001,
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _s5p_l1b(catalog: Catalog, tmp: Path) -> StepContext:
    step = plan_cloud_l1b(catalog, tmp)
    with catalog.session() as s:
        return build_job_spec(s, step)


def _sky_calexp(catalog: Catalog, tmp: Path) -> StepContext:
    ingest(catalog, "SKY", DAY, DAY + timedelta(days=1), tmp)
    plan(
        catalog,
        "SKY",
        requested_classes=["CALEXP_G"],
        start=DAY,
        stop=DAY + timedelta(days=1),
        facility="observatory_hpc",
        identifier="night-2025-03-01",
    )
    (step,) = steps_of(catalog, "night-2025-03-01")["CALEXP_G"]
    with catalog.session() as s:
        return build_job_spec(s, step)


def _pod(ctx: StepContext, **task_kwargs: Any) -> tuple[KubernetesPodOperator, dict[str, Any]]:
    op = JobStepPodOperator(
        task_id=f"step_{ctx.job_step_id}", job_step_id=ctx.job_step_id, mission=ctx.mission, **task_kwargs
    )
    op.configure(ctx)
    pod = op.build_pod_request_obj(context=None, dry_run=True)
    return op, ApiClient().sanitize_for_serialization(pod)


# What each mission's step must get: (builder, expectations)
CASES = {
    "S5P": (
        _s5p_l1b,
        {
            "image": "proseo/s5p-l01b:2.10.0",
            "requests": {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "20Gi"},
            "limits": {"cpu": "2", "memory": "4Gi"},
            "deadline": 2 * 3600 + 600,
            "namespace": "s5p-processing",
            "node_selector": {"proseo.io/pool": "processing"},
            "service_account": "proseo-processor",
            "pull_secrets": None,
            "order": "cloud-l1b",
            "storages": {"cloud": "s3://s5p-products", "local": "file://"},
        },
    ),
    "SKY": (
        _sky_calexp,
        {
            "image": "proseo/sky-calib:1.2.0",
            "requests": {"cpu": "2", "memory": "6Gi", "ephemeral-storage": "50Gi"},
            "limits": {"cpu": "2", "memory": "6Gi"},
            "deadline": 3 * 3600 + 600,
            "namespace": "sky-pipelines",
            "node_selector": {"node.kubernetes.io/instance-type": "highmem"},
            "service_account": "proseo-processor",
            "pull_secrets": [{"name": "observatory-registry"}],
            "order": "night-2025-03-01",
            "storages": {"observatory_hpc": "s3://sky-survey-data/products", "local": "file://"},
        },
    ),
}


@pytest.mark.parametrize("mission", sorted(CASES))
def test_pod_spec_field_by_field(mission: str, catalog: Catalog, data_dirs, tmp_path: Path) -> None:
    onboard(catalog, mission)
    build, want = CASES[mission]
    ctx = build(catalog, tmp_path)
    op, pod = _pod(ctx, retries=3, pool=ctx.pool, priority_weight=ctx.priority)

    # The operator: deferrable, durable, manifest via the XCom sidecar, successful pods removed.
    assert isinstance(op, KubernetesPodOperator)
    assert op.deferrable is True and op.durable is True and op.do_xcom_push is True
    assert op.on_finish_action.value == "delete_succeeded_pod"
    assert (op.retries, op.pool, op.priority_weight) == (3, ctx.pool, ctx.priority)
    assert ctx.pool == f"proseo__{mission.lower()}__{ctx.facility}"

    # The pod is one the Kubernetes API's schema admits, strictly (tests/tests_k8s.py).
    assert schema_errors(pod) == []
    meta, spec = pod["metadata"], pod["spec"]
    assert meta["namespace"] == want["namespace"]
    assert meta["name"].startswith(f"proseo-{mission.lower()}-{ctx.job_step_id}-")
    assert meta["labels"] == {
        "proseo-mission": mission,
        "proseo-order": want["order"],
        "proseo-job-step": str(ctx.job_step_id),
        "airflow_version": meta["labels"]["airflow_version"],
    }
    assert meta["annotations"] == {"proseo.io/order": want["order"], "proseo.io/facility": ctx.facility}

    assert spec["restartPolicy"] == "Never"
    assert spec["activeDeadlineSeconds"] == want["deadline"]
    assert spec["nodeSelector"] == want["node_selector"]
    assert spec["serviceAccountName"] == want["service_account"]
    assert spec.get("imagePullSecrets") == (want["pull_secrets"] or [])
    assert spec["securityContext"] == POD_SECURITY
    assert sorted((v["name"], v) for v in spec["volumes"]) == [
        ("tmp", {"name": "tmp", "emptyDir": {}}),
        ("work", {"name": "work", "emptyDir": {}}),
        ("xcom", {"name": "xcom", "emptyDir": {}}),
    ]

    base, sidecar = spec["containers"]
    assert base["name"] == "base" and sidecar["name"] == "airflow-xcom-sidecar"
    assert base["image"] == want["image"]
    assert base["command"] == ["proseo-wrapper"]
    assert base["args"] == ["run", "--spec-env", "PROSEO_JOB_SPEC", "--xcom", "/airflow/xcom/return.json"]
    env = {e["name"]: e["value"] for e in base["env"]}
    assert set(env) == {"PROSEO_JOB_SPEC", "PROSEO_SCRATCH"}
    assert env["PROSEO_SCRATCH"] == "/work"
    shipped = JobSpec.model_validate_json(env["PROSEO_JOB_SPEC"])
    assert shipped == ctx.spec
    assert shipped.output_storage == ctx.facility
    assert {k: v.url[: len(want["storages"][k])] for k, v in shipped.storages.items()} == want["storages"]
    assert base["resources"] == {"requests": want["requests"], "limits": want["limits"]}
    assert base["securityContext"] == HARDENED_CONTAINER
    assert sidecar["securityContext"] == HARDENED_CONTAINER
    assert sorted((m["mountPath"], m["name"]) for m in base["volumeMounts"]) == [
        ("/airflow/xcom", "xcom"),
        ("/tmp", "tmp"),
        ("/work", "work"),
    ]


def test_two_task_processor_requests_the_sum(sky_cat: Catalog, tmp_path: Path) -> None:
    """COADD has two tasks (2 cpu/8Gi and 4 cpu/16Gi): one container asks for both."""
    ingest(sky_cat, "SKY", DAY, DAY + timedelta(days=1), tmp_path)
    plan(
        sky_cat,
        "SKY",
        requested_classes=["STACK_G"],
        start=DAY,
        stop=DAY + timedelta(days=1),
        facility="observatory_hpc",
    )
    steps = steps_of(sky_cat)
    register_outputs(sky_cat, steps["CALEXP_G"][0])  # the stack's input, made upstream
    with sky_cat.session() as s:
        ctx = build_job_spec(s, steps["STACK_G"][0])
    _, pod = _pod(ctx)
    assert schema_errors(pod) == []
    base = pod["spec"]["containers"][0]
    assert base["image"] == "proseo/sky-coadd:1.0.3"
    assert base["resources"] == {
        "requests": {"cpu": "6", "memory": "24Gi", "ephemeral-storage": "100Gi"},
        "limits": {"cpu": "6", "memory": "24Gi"},
    }
    assert pod["spec"]["activeDeadlineSeconds"] == 4 * 3600 + 600
    assert [t.name for t in ctx.spec.tasks] == ["WARP", "COADD"]


def test_a_step_on_the_production_pod_template_is_a_pod_of_the_schema(
    s5p_cat: Catalog, tmp_path: Path
) -> None:
    """The S5P cloud facility's L1B step with deploy/'s pod template under it, as production runs it."""
    ctx = dataclasses.replace(_s5p_l1b(s5p_cat, tmp_path), pod_template_file=str(TEMPLATE))
    _, pod = _pod(ctx, retries=3, pool=ctx.pool, priority_weight=ctx.priority)
    assert schema_errors(pod) == []
    spec = pod["spec"]
    assert spec["priorityClassName"] == "proseo-processing" and spec["tolerations"]
    assert [c["name"] for c in spec["containers"]] == ["base", "airflow-xcom-sidecar"]
    assert spec["containers"][0]["image"] == "proseo/s5p-l01b:2.10.0"


def test_kubernetes_backend_refuses_a_local_facility(s5p_cat: Catalog, tmp_path: Path) -> None:
    ctx = _s5p_l1b(s5p_cat, tmp_path)
    local = dataclasses.replace(ctx, backend="local", namespace=None)
    with pytest.raises(ExecutionError, match="has no Kubernetes namespace"):
        _pod(local)


def test_a_spec_too_large_for_the_environment_is_refused() -> None:
    ctx = sample_context(backend="kubernetes")
    many = [
        f.model_copy(update={"key": f"L1B_RA_BD3/2025/03/01/in{i:05d}.nc"})
        for i in range(1000)
        for f in ctx.spec.inputs
    ]
    big = dataclasses.replace(ctx, spec=ctx.spec.model_copy(update={"inputs": many}))
    with pytest.raises(
        ExecutionError, match=r"more than an environment variable can carry .*; 1000 input files"
    ):
        _pod(big)
    assert _pod(ctx)[0].image == ctx.image


def _provider_modules(code: str) -> set[str]:
    """Modules of the Kubernetes provider and client loaded after ``code`` (in a fresh interpreter)."""
    probe = (
        "import sys\n"
        + code
        + "\nprint(repr(sorted(m for m in sys.modules if m.startswith("
        + "('airflow.providers.cncf.kubernetes', 'kubernetes', 'proseo.execution.kubernetes')))))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    return set(eval(result.stdout.strip().splitlines()[-1]))


def test_local_backend_does_not_load_the_kubernetes_provider() -> None:
    """Importing proseo.execution and the local operator, through the backend mapping, leaves
    the provider's operator, the Kubernetes client and proseo.execution.kubernetes unloaded
    (they cost seconds)."""
    ours = _provider_modules(
        "import proseo.execution\n"
        "assert not any(m.startswith('airflow') for m in sys.modules), 'proseo.execution imported Airflow'\n"
        "from proseo.execution.backends import operator_class\n"
        "op = operator_class('local', order='S5P/o1', facility='local')(\n"
        "    task_id='t', job_step_id=1, mission='S5P')\n"
        "assert type(op).__name__ == 'JobStepOperator'"
    )
    # Airflow's provider discovery loads the provider's package metadata on its own.
    airflow_itself = _provider_modules("from airflow.sdk import BaseOperator\nBaseOperator(task_id='t')")
    assert ours <= airflow_itself, ours - airflow_itself
    assert "airflow.providers.cncf.kubernetes.operators.pod" not in ours
    assert not {m for m in ours if m == "kubernetes" or m.startswith(("kubernetes.", "proseo.execution.k"))}
