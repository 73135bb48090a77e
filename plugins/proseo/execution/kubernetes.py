"""The Kubernetes backend: one pod per job step, running the processor image.

The only module of proseo that imports the Kubernetes provider (ruff TID251 enforces
it; importing it costs seconds, so :func:`proseo.execution.backend_for` loads this
module only for Kubernetes facilities).

The pod runs ``proseo-wrapper run --spec-env PROSEO_JOB_SPEC --xcom /airflow/xcom/return.json``
inside the processor image: the job spec travels in the environment variable
``PROSEO_JOB_SPEC`` (JSON) and the manifest comes back through the KPO's XCom sidecar.
The pod holds no database credentials; registration is the orchestrator's job.

Choices:

* Resources: requests are the sum of the processor tasks' cpu and memory (the tasks of
  one run share the container); the memory limit equals the request (no overcommit:
  a processor that outgrows its declaration is OOM-killed instead of starving its
  neighbours) and so does the cpu limit (a predictable share). ``min_disk`` is the
  ephemeral-storage request, so the scheduler places the pod where the scratch space
  exists; there is no ephemeral-storage limit ("min" disk is a floor, not a cap).
* Deadline: ``activeDeadlineSeconds = ceil(max_run_time + 600 s)``. Kubernetes counts
  it from the pod's start, so it covers image pull, stage-in, the Job Order, the run
  and the upload. The wrapper enforces ``max_run_time`` on the processor itself; the
  600 s staging allowance (``STAGING_ALLOWANCE_S``) bounds everything around it, so a
  hung transfer cannot hold a node forever.
* Security: non-root (uid/gid/fsGroup 10001), seccomp RuntimeDefault, no privilege
  escalation, all capabilities dropped, read-only root filesystem. Writable places
  are emptyDir volumes: ``/work`` (``PROSEO_SCRATCH``, the wrapper's working
  directory), ``/tmp`` (processors that write temporary files there) and the XCom
  sidecar's ``/airflow/xcom``. The sidecar gets the same hardened container context,
  so the pod passes the "restricted" Pod Security Standard.
* Size: one environment string may hold at most 128 KiB (Linux MAX_ARG_STRLEN), some
  250 input files; a larger spec is refused when the task is made (see ``MAX_SPEC_ENV_BYTES``).
* Pod name ``proseo-<mission>-<job step id>`` plus the KPO's random suffix (a failed
  pod is kept for inspection, so a retry needs a new name); ``durable=True`` makes a
  retry reattach to a still-running pod instead of starting a second one.
"""

from __future__ import annotations

import re
from typing import Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.pod_generator import make_safe_label_value
from kubernetes.client import models as k8s

from proseo.execution.errors import ExecutionError
from proseo.execution.jobspec import StepContext

SPEC_ENV = "PROSEO_JOB_SPEC"
XCOM_PATH = "/airflow/xcom/return.json"
WORK_DIR = "/work"
TMP_DIR = "/tmp"
RUN_AS = 10001
#: Linux refuses to exec a process with one environment string longer than 128 KiB
#: (MAX_ARG_STRLEN); a spec that does not fit is refused here, not at pod start.
MAX_SPEC_ENV_BYTES = 128 * 1024 - len(SPEC_ENV) - 2
WRAPPER_CMD = ["proseo-wrapper"]
WRAPPER_ARGS = ["run", "--spec-env", SPEC_ENV, "--xcom", XCOM_PATH]


def pod_name(ctx: StepContext) -> str:
    """``proseo-<mission>-<job step id>``, lower case, a valid DNS label."""
    mission = re.sub(r"[^a-z0-9-]", "-", ctx.mission.lower()).strip("-")
    return f"proseo-{mission}-{ctx.job_step_id}"


def labels(ctx: StepContext) -> dict[str, str]:
    return {
        "proseo-mission": make_safe_label_value(ctx.mission),
        "proseo-order": make_safe_label_value(ctx.order_identifier),
        "proseo-job-step": str(ctx.job_step_id),
    }


def container_security_context() -> k8s.V1SecurityContext:
    return k8s.V1SecurityContext(
        allow_privilege_escalation=False,
        capabilities=k8s.V1Capabilities(drop=["ALL"]),
        read_only_root_filesystem=True,
        run_as_non_root=True,
    )


def pod_security_context() -> k8s.V1PodSecurityContext:
    return k8s.V1PodSecurityContext(
        run_as_non_root=True,
        run_as_user=RUN_AS,
        run_as_group=RUN_AS,
        fs_group=RUN_AS,
        seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
    )


def resources(ctx: StepContext) -> k8s.V1ResourceRequirements:
    cpu, memory = ctx.cpu_request, ctx.memory_request
    return k8s.V1ResourceRequirements(
        requests={"cpu": cpu, "memory": memory, "ephemeral-storage": ctx.min_disk},
        limits={"cpu": cpu, "memory": memory},
    )


class KubernetesBackend:
    """Backend ``kubernetes``: a KubernetesPodOperator per job step."""

    name = "kubernetes"

    def make_task(self, ctx: StepContext, *, task_id: str, **task_kwargs: Any) -> KubernetesPodOperator:
        if ctx.backend != self.name or not ctx.namespace:
            raise ExecutionError(
                f"facility {ctx.facility} (backend {ctx.backend}) has no Kubernetes namespace",
                job_step_id=ctx.job_step_id,
                order=f"{ctx.mission}/{ctx.order_identifier}",
            )
        spec_json = ctx.spec.model_dump_json()
        if len(spec_json.encode()) > MAX_SPEC_ENV_BYTES:
            raise ExecutionError(
                f"the job spec is {len(spec_json.encode())} bytes, more than an environment variable "
                f"can carry ({MAX_SPEC_ENV_BYTES}); {len(ctx.spec.inputs)} input files",
                job_step_id=ctx.job_step_id,
                order=f"{ctx.mission}/{ctx.order_identifier}",
            )
        options: dict[str, Any] = {
            "task_id": task_id,
            "namespace": ctx.namespace,
            "name": pod_name(ctx),
            "image": ctx.image,
            "cmds": list(WRAPPER_CMD),
            "arguments": list(WRAPPER_ARGS),
            "env_vars": [
                k8s.V1EnvVar(name=SPEC_ENV, value=spec_json),
                k8s.V1EnvVar(name="PROSEO_SCRATCH", value=WORK_DIR),
            ],
            "container_resources": resources(ctx),
            "active_deadline_seconds": ctx.deadline_s,
            "node_selector": dict(ctx.node_selector),
            "service_account_name": ctx.service_account,
            "image_pull_secrets": [k8s.V1LocalObjectReference(name=s) for s in ctx.image_pull_secrets],
            "security_context": pod_security_context(),
            "container_security_context": container_security_context(),
            "xcom_sidecar_container_security_context": container_security_context(),
            "volumes": [
                k8s.V1Volume(name="work", empty_dir=k8s.V1EmptyDirVolumeSource()),
                k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource()),
            ],
            "volume_mounts": [
                k8s.V1VolumeMount(name="work", mount_path=WORK_DIR),
                k8s.V1VolumeMount(name="tmp", mount_path=TMP_DIR),
            ],
            "labels": labels(ctx),
            "annotations": {"proseo.io/order": ctx.order_identifier, "proseo.io/facility": ctx.facility},
            "do_xcom_push": True,
            "deferrable": True,
            "durable": True,
            "on_finish_action": "delete_succeeded_pod",
            "get_logs": True,
        }
        options.update(task_kwargs)
        return KubernetesPodOperator(**options)
