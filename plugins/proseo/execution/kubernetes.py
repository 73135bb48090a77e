"""The Kubernetes backend: one pod per job step, running the processor image.

The only module of proseo that imports the Kubernetes provider (ruff TID251 enforces
it; importing it costs seconds, so :data:`proseo.execution.backends.OPERATORS` loads
this module only for Kubernetes facilities).

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

from airflow.providers.cncf.kubernetes.backcompat.backwards_compat_converters import (
    convert_image_pull_secrets,
)
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.pod_generator import make_safe_label_value
from airflow.providers.cncf.kubernetes.utils.pod_manager import OnFinishAction
from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowException
from kubernetes.client import models as k8s

from proseo.catalog.register import RunIdentity
from proseo.execution import steptask
from proseo.execution.errors import ExecutionError
from proseo.execution.jobspec import StepContext
from proseo.wrapper.spec import Manifest, Status

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


#: The settings that do not depend on the step (JobStepPodOperator gets them when made).
def static_pod_settings() -> dict[str, Any]:
    return {
        "cmds": list(WRAPPER_CMD),
        "arguments": list(WRAPPER_ARGS),
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
        "do_xcom_push": True,
        "deferrable": True,
        "durable": True,
        "on_finish_action": "delete_succeeded_pod",
        "get_logs": True,
    }


def pod_settings(ctx: StepContext) -> dict[str, Any]:
    """The KubernetesPodOperator arguments of a job step (all but ``task_id``).

    :meth:`JobStepPodOperator.configure` applies them when the task runs.
    """
    if ctx.backend != JobStepPodOperator.backend or not ctx.namespace:
        raise ExecutionError(
            f"facility {ctx.facility} (backend {ctx.backend}) has no Kubernetes namespace",
            job_step_id=ctx.job_step_id,
            order=f"{ctx.mission}/{ctx.order_identifier}",
        )
    if not ctx.image:  # the mission check requires it with a Kubernetes facility; older revisions
        raise ExecutionError(
            f"processor {ctx.spec.processor} {ctx.spec.version} has no image to run as a pod "
            f"on facility {ctx.facility}",
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
    return {
        "namespace": ctx.namespace,
        "name": pod_name(ctx),
        "image": ctx.image,
        "env_vars": [
            k8s.V1EnvVar(name=SPEC_ENV, value=spec_json),
            k8s.V1EnvVar(name="PROSEO_SCRATCH", value=WORK_DIR),
        ],
        "container_resources": resources(ctx),
        "active_deadline_seconds": ctx.deadline_s,
        "node_selector": dict(ctx.node_selector),
        "service_account_name": ctx.service_account,
        "image_pull_secrets": [k8s.V1LocalObjectReference(name=s) for s in ctx.image_pull_secrets],
        "labels": labels(ctx),
        "annotations": {"proseo.io/order": ctx.order_identifier, "proseo.io/facility": ctx.facility},
        # The cluster's base pod (deploy/kubernetes/processor-pod-template.yaml is an example);
        # the KPO lays the settings above over it (PodGenerator.reconcile_pods).
        "pod_template_file": ctx.pod_template_file,
        **static_pod_settings(),
    }


class JobStepPodOperator(KubernetesPodOperator):
    """The processor task of a job step on a Kubernetes facility (the factory maps it).

    Made with serialisable arguments only (``job_step_id`` is templated, so it can come
    from ``expand``); everything that depends on the step is read from the catalogue
    when the task runs: :func:`proseo.execution.steptask.begin` checks the upstream
    steps and marks the step RUNNING, :meth:`configure` sets the pod up from
    :func:`pod_settings`. When the pod has finished, its XCom (the wrapper's manifest)
    goes to :func:`proseo.execution.steptask.finish`: products, provenance, Asset
    events, order roll-up. A FAILED manifest is recorded before the provider fails the
    task (the wrapper exits non-zero), and its reason is what the task fails with.

    The result arrives in :meth:`execute` (``deferrable=False``) or in
    :meth:`trigger_reentry` (deferrable: after the trigger, or directly when a durable
    retry finds the pod already finished).
    """

    backend = "kubernetes"
    template_fields = ("job_step_id", *KubernetesPodOperator.template_fields)
    ui_color = "#9ecae1"

    def __init__(
        self, *, job_step_id: Any, mission: str, catalog_url: str | None = None, **kwargs: Any
    ) -> None:
        static = static_pod_settings()
        # What the caller set itself stays as set; configure() does not overwrite it.
        self._own_settings = frozenset(k for k in kwargs if k in static or k in _STEP_KEYS)
        super().__init__(**{**static, **kwargs})
        self.job_step_id = job_step_id
        self.mission = mission
        self.catalog_url = catalog_url
        self._result: dict[str, Any] | None = None

    def configure(self, ctx: StepContext) -> None:
        """Set the pod up for the step: :func:`pod_settings`, except what the caller set."""
        for key, value in pod_settings(ctx).items():
            if key in self._own_settings:
                continue
            if key == "image_pull_secrets":
                value = convert_image_pull_secrets(value) if value else []
            elif key == "on_finish_action":
                value = OnFinishAction(value)
            elif key == "durable":
                self.reattach_on_restart = value
            setattr(self, key, value)
        self.pod_request_obj = None

    def execute(self, context: Context) -> Any:
        step_id, ti = int(self.job_step_id), context["ti"]
        catalog = steptask.catalog_for(self.catalog_url)
        ctx = steptask.begin(
            catalog, step_id, task_id=ti.task_id, try_number=ti.try_number, backend=self.backend
        )
        self.configure(ctx)
        result = super().execute(context)
        if not self.deferrable:
            return self.complete(result, context=context)
        # Deferrable: reached only when the pod had already finished, so trigger_reentry
        # ran (and registered) without deferring.
        return self._result

    def trigger_reentry(self, context: Context, event: dict[str, Any]) -> Any:
        result = super().trigger_reentry(context, event)
        return self.complete(result, context=context)

    def post_complete_action(
        self, *, pod: k8s.V1Pod, remote_pod: k8s.V1Pod, context: Context, result: dict | None, **kwargs: Any
    ) -> None:
        # A failed run exits non-zero, so the provider fails the task in here; the FAILED
        # manifest is recorded first and its reason is what the task fails with.
        failure = self.manifest_failure(result, context)
        try:
            super().post_complete_action(
                pod=pod, remote_pod=remote_pod, context=context, result=result, **kwargs
            )
        except AirflowException:
            if failure is None:
                raise
            raise failure from None
        if failure is not None:
            raise failure

    def manifest_failure(self, result: Any, context: Context | None) -> AirflowException | None:
        """Record the pod's manifest on the step if it is FAILED; the exception to fail with."""
        try:
            manifest = Manifest.model_validate(result) if result is not None else None
        except ValueError:
            self.log.warning("job step %s: the pod's XCom is no manifest", self.job_step_id)
            return None
        if manifest is None or manifest.status is not Status.FAILED:
            return None
        ti = context["ti"] if context is not None else None
        catalog = steptask.catalog_for(self.catalog_url)
        return steptask.manifest_failure(catalog, int(self.job_step_id), manifest, ti)

    def complete(
        self, result: Any, *, context: Context | None = None, run: RunIdentity | None = None
    ) -> dict[str, Any]:
        """Register the pod's manifest (``result``, the XCom of the wrapper).

        Needs the Airflow ``context`` (run identity, Asset events) or, outside Airflow,
        ``run``. A FAILED manifest is recorded on the step and fails the task.
        """
        step_id = int(self.job_step_id)
        if result is None:
            raise AirflowException(f"job step {step_id}: the pod finished without a manifest")
        try:
            manifest = Manifest.model_validate(result)
        except ValueError as exc:
            raise AirflowException(f"job step {step_id}: the pod's XCom is no manifest: {exc}") from None
        self._result = steptask.finish(
            steptask.catalog_for(self.catalog_url),
            step_id,
            manifest,
            mission=self.mission,
            context=context,
            log=self.log,
            run=run,
        )
        return self._result


#: The settings that depend on the step.
_STEP_KEYS = frozenset(
    {
        "namespace",
        "name",
        "image",
        "env_vars",
        "container_resources",
        "active_deadline_seconds",
        "node_selector",
        "service_account_name",
        "image_pull_secrets",
        "labels",
        "annotations",
        "pod_template_file",
    }
)
