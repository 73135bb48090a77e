"""The Slurm backend: every job step is one batch job; the task waits for it deferred.

The only module of proseo that knows Slurm. It needs no Slurm library: the operator
calls ``sbatch`` and ``scancel``, the trigger ``squeue`` and ``sacct`` (asyncio
subprocesses in the triggerer), all found on PATH and pointed at the cluster by the
usual ``SLURM_CONF`` of the worker and triggerer.

A run, try ``n`` of a step, in ``<shared_dir>/<mission>/<order>/<job step id>/try-<n>/``
(the facility's ``slurm.shared_dir``, the same path on the workers and the compute nodes):

1. :func:`proseo.execution.steptask.begin`; ``spec.json`` and ``job.sh`` are written
   there; a job of an earlier try of the step still queued or running is cancelled
   (``scancel --name``: a lost worker cannot leave two runs writing the same outputs);
2. ``sbatch job.sh``: the script ``exec``s ``proseo-wrapper run spec.json --xcom
   manifest.json`` of this environment, with ``PROSEO_SCRATCH`` set to the facility's
   ``scratch_path`` (node-local; the wrapper's working directory goes there and is
   removed after a successful run). Options from the processor's tasks and the facility:
   ``--cpus-per-task`` (the tasks' cpu summed, rounded up), ``--mem`` (summed, MiB),
   ``--time`` (``slurm.time_limit``, else max_run_time plus the staging allowance, whole
   minutes), ``--partition``, ``--account``, ``--qos``; job name
   ``proseo-<mission>-<order>-<step>``. The wrapper's stdout/stderr go to
   ``wrapper.out`` / ``wrapper.log``. The environment handed to the job drops the
   catalogue URL and Airflow's settings (the job holds no database credentials);
3. the task defers to :class:`SlurmJobTrigger`: ``squeue`` until the job leaves the
   queue's states; a job gone from ``squeue`` is complete only when ``sacct`` or the
   manifest on the shared directory says so (clusters without accounting answer
   nothing in ``sacct``); with neither after ``grace_polls`` more polls it is lost;
4. :meth:`JobStepSlurmOperator.execute_complete`: a job that Slurm ended (TIMEOUT,
   CANCELLED, OUT_OF_MEMORY, NODE_FAIL, ...) fails the step with Slurm's reason, e.g.
   "Slurm time limit exceeded"; otherwise the manifest is read back and goes to
   :func:`proseo.execution.steptask.finish`.

``on_kill`` (operator, while submitting) and :meth:`SlurmJobTrigger.on_kill` (deferred,
when the task is killed) cancel the job.
"""

from __future__ import annotations

import asyncio
import math
import re
import shlex
import subprocess
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.triggers.base import BaseTrigger, TriggerEvent
from pydantic import ValidationError

from proseo.execution import steptask
from proseo.execution.errors import ExecutionError
from proseo.execution.jobspec import STAGING_ALLOWANCE_S, StepContext
from proseo.execution.local import find_wrapper, subprocess_env
from proseo.missions.models import SlurmSettings
from proseo.missions.types import quantity_value
from proseo.wrapper.spec import Manifest, Status

#: States in which a job has not ended yet (squeue's long names).
ACTIVE = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "SUSPENDED",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "RESIZING",
        "RESV_DEL_HOLD",
        "SIGNALING",
        "STAGE_OUT",
        "STOPPED",
    }
)
#: Ends that Slurm imposed: the step fails with this reason whatever the manifest says.
SLURM_ENDS = {
    "TIMEOUT": "Slurm time limit exceeded",
    "CANCELLED": "the Slurm job was cancelled",
    "OUT_OF_MEMORY": "the Slurm job ran out of memory",
    "NODE_FAIL": "the Slurm job's node failed",
    "BOOT_FAIL": "the Slurm job's node failed to boot",
    "PREEMPTED": "the Slurm job was preempted",
    "DEADLINE": "the Slurm job missed its deadline",
    "REVOKED": "the Slurm job was revoked",
}
#: Secrets and settings of the orchestrator that a batch job must not inherit.
PRIVATE_ENV = re.compile(r"^(PROSEO_CATALOG_URL|PROSEO_AIRFLOW_.*|AIRFLOW__.*|AIRFLOW_CONN_.*)$")
TAIL_LINES = 20


# --- the batch job ------------------------------------------------------------------------


def job_dir(ctx: StepContext, try_number: int) -> Path:
    """``<shared_dir>/<mission>/<order>/<job step id>/try-<n>`` (shared with the nodes)."""
    settings = _settings(ctx)
    return Path(
        settings.shared_dir, ctx.mission, ctx.order_identifier, str(ctx.job_step_id), f"try-{try_number}"
    )


def job_name(ctx: StepContext) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"proseo-{ctx.mission}-{ctx.order_identifier}-{ctx.job_step_id}")


def time_limit_min(ctx: StepContext) -> int:
    """Whole minutes: the facility's ``time_limit``, else max run time plus staging."""
    limit = _settings(ctx).time_limit
    seconds = limit.total_seconds() if limit is not None else ctx.max_run_time_s + STAGING_ALLOWANCE_S
    return max(1, math.ceil(seconds / 60))


def sbatch_options(ctx: StepContext, directory: Path) -> list[str]:
    """The job's options, from the processor's tasks and the facility's settings."""
    settings = _settings(ctx)
    cpus = max(1, math.ceil(quantity_value(ctx.cpu_request) - 1e-9))
    mem_mib = max(1, math.ceil(quantity_value(ctx.memory_request) / 2**20))
    options = [
        f"--job-name={job_name(ctx)}",
        "--nodes=1",
        "--ntasks=1",
        f"--cpus-per-task={cpus}",
        f"--mem={mem_mib}M",
        f"--time={time_limit_min(ctx)}",
        f"--chdir={directory}",
        f"--output={directory / 'wrapper.out'}",
        f"--error={directory / 'wrapper.log'}",
    ]
    for flag, value in (
        ("partition", settings.partition),
        ("account", settings.account),
        ("qos", settings.qos),
    ):
        if value:
            options.append(f"--{flag}={value}")
    return options


def batch_script(ctx: StepContext, directory: Path, wrapper: Sequence[str]) -> str:
    """``job.sh``: the options as ``#SBATCH`` lines, then the wrapper (exec'd: the job's
    signals, SIGTERM at the time limit, reach it directly)."""
    lines = ["#!/bin/bash", f"# proseo {ctx.mission}/{ctx.order_identifier} job step {ctx.job_step_id}"]
    lines += [f"#SBATCH {option}" for option in sbatch_options(ctx, directory)]
    bin_dir = str(Path(wrapper[0]).parent)
    lines += [
        f'export PATH={shlex.quote(bin_dir)}:"$PATH"',
        f"export PROSEO_SCRATCH={shlex.quote(ctx.scratch_path)}",
        f"mkdir -p {shlex.quote(ctx.scratch_path)}",
        "exec "
        + shlex.join(
            [*wrapper, "run", str(directory / "spec.json"), "--xcom", str(directory / "manifest.json")]
        ),
        "",
    ]
    return "\n".join(lines)


def job_env() -> dict[str, str]:
    """What sbatch (and so the job) gets: ours, minus the orchestrator's secrets."""
    return {k: v for k, v in subprocess_env().items() if not PRIVATE_ENV.match(k)}


def submit(
    ctx: StepContext, try_number: int, *, wrapper: Sequence[str] | None = None, log: Any = None
) -> str:
    """Write the spec and the script, cancel a stale job of the step, sbatch; the job id."""
    where: dict[str, Any] = {"job_step_id": ctx.job_step_id, "order": f"{ctx.mission}/{ctx.order_identifier}"}
    directory = job_dir(ctx, try_number)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in ("manifest.json", "wrapper.out", "wrapper.log"):  # a rerun of the same try
        (directory / stale).unlink(missing_ok=True)
    (directory / "spec.json").write_text(ctx.spec.model_dump_json(indent=2) + "\n")
    script = directory / "job.sh"
    script.write_text(batch_script(ctx, directory, wrapper or find_wrapper()))
    env = job_env()
    _run(["scancel", f"--name={job_name(ctx)}"], env, where)
    out = _run(["sbatch", "--parsable", str(script)], env, where)
    job_id = out.strip().split(";")[0]
    if not job_id.isdigit():
        raise ExecutionError(f"sbatch answered {out.strip()!r}, not a job id", **where)
    if log is not None:
        log.info("job step %s try %s: Slurm job %s (%s)", ctx.job_step_id, try_number, job_id, script)
    return job_id


def cancel(job_id: str) -> None:
    subprocess.run(["scancel", job_id], capture_output=True, timeout=60, check=False)


def _run(command: list[str], env: dict[str, str], where: dict[str, Any]) -> str:
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ExecutionError(f"{command[0]} could not run: {exc}", **where) from None
    if done.returncode != 0:
        raise ExecutionError(
            f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}", **where
        )
    return done.stdout


def _settings(ctx: StepContext) -> SlurmSettings:
    if ctx.slurm is None:
        raise ExecutionError(
            f"facility {ctx.facility} (backend {ctx.backend}) has no Slurm settings",
            job_step_id=ctx.job_step_id,
            order=f"{ctx.mission}/{ctx.order_identifier}",
        )
    return ctx.slurm


# --- the trigger ----------------------------------------------------------------------------


class SlurmJobTrigger(BaseTrigger):
    """Waits for a Slurm job to end; one event ``{"job_id", "state", "source", "detail",
    "manifest_path", "time_limit_min"}`` (all the resumed task needs: ``dag.test()`` hands
    the task only the event, not the ``defer`` kwargs).

    ``source`` says who knew: ``squeue`` (the job is still in the controller's memory),
    ``sacct`` (accounting), ``manifest`` (neither knew, but the wrapper's manifest is on
    the shared directory; state ``UNKNOWN``) or ``lost`` (none of them, ``grace_polls``
    polls after the job left the queue). A failing ``squeue`` (controller down) is
    logged and polled again.
    """

    def __init__(
        self,
        job_id: str,
        manifest_path: str,
        poll_interval: float = 30.0,
        grace_polls: int = 3,
        time_limit_min: int | None = None,
    ):
        super().__init__()
        self.job_id = str(job_id)
        self.manifest_path = manifest_path
        self.poll_interval = float(poll_interval)
        self.grace_polls = int(grace_polls)
        self.time_limit_min = time_limit_min

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "manifest_path": self.manifest_path,
                "poll_interval": self.poll_interval,
                "grace_polls": self.grace_polls,
                "time_limit_min": self.time_limit_min,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        missing, last = 0, None
        while True:
            state = await self.queue_state()
            if state is not None and state != last:
                self.log.info("Slurm job %s: %s", self.job_id, state)
                last = state
            if state is not None and state.split("|")[0] not in ACTIVE and state != "?":
                yield self._event(state.split("|")[0], "squeue", state)
                return
            if state is None:  # gone from the queue: accounting, else the manifest
                accounted = await self.accounting_state()
                if accounted is not None:
                    yield self._event(accounted[0], "sacct", accounted[1])
                    return
                if Path(self.manifest_path).is_file():
                    yield self._event("UNKNOWN", "manifest", "not in squeue or sacct; the manifest is there")
                    return
                missing += 1
                if missing > self.grace_polls:
                    yield self._event("UNKNOWN", "lost", "not in squeue or sacct, and no manifest")
                    return
            await asyncio.sleep(self.poll_interval)

    def _event(self, state: str, source: str, detail: str) -> TriggerEvent:
        return TriggerEvent(
            {
                "job_id": self.job_id,
                "state": state,
                "source": source,
                "detail": detail,
                "manifest_path": self.manifest_path,
                "time_limit_min": self.time_limit_min,
            }
        )

    async def queue_state(self) -> str | None:
        """``STATE|reason`` from squeue; None when the job is not there, ``?`` when squeue failed."""
        code, out, err = await _command("squeue", "-h", "--states=all", "-j", self.job_id, "-o", "%T|%r")
        if code != 0:
            if "Invalid job id" in err:
                return None
            self.log.warning("Slurm job %s: squeue failed (%s): %s", self.job_id, code, err.strip())
            return "?"
        line = out.strip().splitlines()[0] if out.strip() else ""
        return line or None

    async def accounting_state(self) -> tuple[str, str] | None:
        """(state, ``state exit-code``) from sacct; None without accounting or a record."""
        code, out, _ = await _command("sacct", "-n", "-P", "-X", "-j", self.job_id, "-o", "State,ExitCode")
        if code != 0 or not out.strip():
            return None
        state, _, exit_code = out.strip().splitlines()[0].partition("|")
        word = state.split()[0] if state.split() else ""
        if not word or word in ACTIVE:
            return None
        return word, f"{state} exit {exit_code}"

    async def on_kill(self) -> None:
        """The task was killed while deferred (order cancelled, marked failed): end the job."""
        await _command("scancel", self.job_id)


async def _command(*command: str) -> tuple[int, str, str]:
    try:
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    except (OSError, TimeoutError) as exc:
        return 255, "", str(exc)
    return process.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


# --- the operator ----------------------------------------------------------------------------


class JobStepSlurmOperator(BaseOperator):
    """The processor task of a job step on a Slurm facility (the factory maps it).

    Made with serialisable arguments only; ``poll_interval`` (seconds) overrides the
    facility's, ``wrapper`` the wrapper command (default: ``proseo-wrapper`` beside this
    interpreter, which the compute nodes must see at the same path).
    """

    backend = "slurm"
    template_fields: Sequence[str] = ("job_step_id",)
    ui_color = "#fdd0a2"

    def __init__(
        self,
        *,
        job_step_id: Any,
        mission: str,
        catalog_url: str | None = None,
        poll_interval: float | None = None,
        wrapper: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_step_id = job_step_id
        self.mission = mission
        self.catalog_url = catalog_url
        self.poll_interval = poll_interval
        self.wrapper = list(wrapper) if wrapper else None
        self._job_id: str | None = None

    def execute(self, context: Context) -> None:
        step_id, ti = int(self.job_step_id), context["ti"]
        catalog = steptask.catalog_for(self.catalog_url)
        ctx = steptask.begin(
            catalog, step_id, task_id=ti.task_id, try_number=ti.try_number, backend=self.backend
        )
        self._job_id = submit(ctx, ti.try_number, wrapper=self.wrapper, log=self.log)
        directory = job_dir(ctx, ti.try_number)
        interval = self.poll_interval or _settings(ctx).poll_interval.total_seconds()
        trigger = SlurmJobTrigger(
            self._job_id, str(directory / "manifest.json"), interval, time_limit_min=time_limit_min(ctx)
        )
        self.defer(trigger=trigger, method_name="execute_complete")

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """The job ended: Slurm's own end fails the step with its reason; else the manifest."""
        step_id, ti = int(self.job_step_id), context["ti"]
        catalog = steptask.catalog_for(self.catalog_url)
        job, state = event["job_id"], event["state"]
        base = Path(event["manifest_path"]).parent
        self.log.info("job step %s: Slurm job %s ended %s (%s)", step_id, job, state, event["detail"])
        manifest = read_manifest(base / "manifest.json")
        if state in SLURM_ENDS:
            reason = f"{SLURM_ENDS[state]} (job {job}"
            reason += f", limit {event['time_limit_min']} min)" if state == "TIMEOUT" else ")"
            if manifest is not None and manifest.reason:
                reason += f"; the wrapper said: {manifest.reason}"
            self.log.error(
                "job step %s: %s; wrapper log tail:\n%s", step_id, reason, _tail(base / "wrapper.log")
            )
            failed = Manifest(
                job_step_id=step_id,
                status=Status.FAILED,
                stage="run",
                reason=reason,
                exit_code=manifest.exit_code if manifest else None,
                log_url=manifest.log_url if manifest else None,
            )
            raise steptask.manifest_failure(catalog, step_id, failed, ti)
        if manifest is None:
            raise ExecutionError(
                f"Slurm job {job} ended {state} ({event['source']}: {event['detail']}) without a manifest "
                f"in {base}; wrapper log tail:\n{_tail(base / 'wrapper.log')}",
                job_step_id=step_id,
            )
        if str(manifest.job_step_id) != str(step_id):
            raise ExecutionError(
                f"the manifest in {base} is for job step {manifest.job_step_id}", job_step_id=step_id
            )
        return steptask.finish(
            catalog, step_id, manifest, mission=self.mission, context=context, log=self.log
        )

    def on_kill(self) -> None:
        if self._job_id is not None:
            cancel(self._job_id)


def read_manifest(path: Path) -> Manifest | None:
    """The wrapper's manifest, or None when it is missing or unreadable (a killed wrapper)."""
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return None


def _tail(path: Path) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-TAIL_LINES:])
    except OSError:
        return f"({path} is not readable)"
