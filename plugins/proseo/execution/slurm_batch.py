"""The batch job of a Slurm job step: its directory, options, script; sbatch and scancel.

Everything the operator of :mod:`proseo.execution.slurm` does with Slurm before it
defers: the try's directory on the facility's shared directory, the ``sbatch`` options
from the processor's tasks and the facility's settings, the script that ``exec``s the
wrapper, and the calls themselves (synchronous: they run in the task process).

The job's environment is an allow-list (:func:`job_env`): the worker holds the
catalogue URL, Airflow's settings and variables, database and interface passwords that
mission files name; none of it may reach a third-party processor. ``sbatch`` runs with
only the allowed variables and ``--export=<their names>`` (Slurm adds its ``SLURM_*``),
so the job does not inherit the rest even where Slurm would load a login environment.
"""

from __future__ import annotations

import math
import re
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from proseo.execution.errors import ExecutionError
from proseo.execution.jobspec import STAGING_ALLOWANCE_S, StepContext
from proseo.execution.local import find_wrapper, subprocess_env
from proseo.missions.models import SlurmSettings
from proseo.missions.types import quantity_value

#: What a batch job inherits from the worker, by name: the basics of a process, the
#: wrapper's own settings (its scratch directory, the processors' log format) and the
#: storage's credentials (``AWS_*``: S3 storage reads them, storage/s3.py).
JOB_ENV_NAMES = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        "PROSEO_SCRATCH",
        "PROSEO_IPF_LOG_TIMESTAMPS",
    }
)
#: ... and by prefix: the locale, Slurm's own (``SLURM_CONF`` for the client commands), S3.
JOB_ENV_PREFIXES = ("LC_", "SLURM_", "AWS_")


def job_dir(ctx: StepContext, try_number: int) -> Path:
    """``<shared_dir>/<mission>/<order>/<job step id>/try-<n>`` (shared with the nodes)."""
    settings = settings_of(ctx)
    return Path(
        settings.shared_dir, ctx.mission, ctx.order_identifier, str(ctx.job_step_id), f"try-{try_number}"
    )


def job_name(ctx: StepContext) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"proseo-{ctx.mission}-{ctx.order_identifier}-{ctx.job_step_id}")


def time_limit_min(ctx: StepContext) -> int:
    """Whole minutes: the facility's ``time_limit``, else max run time plus staging."""
    limit = settings_of(ctx).time_limit
    seconds = limit.total_seconds() if limit is not None else ctx.max_run_time_s + STAGING_ALLOWANCE_S
    return max(1, math.ceil(seconds / 60))


def sbatch_options(ctx: StepContext, directory: Path) -> list[str]:
    """The job's options, from the processor's tasks and the facility's settings."""
    settings = settings_of(ctx)
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
    """What sbatch (and so the job) gets: the allowed variables of ours, nothing else."""
    return {k: v for k, v in subprocess_env().items() if k in JOB_ENV_NAMES or k.startswith(JOB_ENV_PREFIXES)}


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
    exported = ",".join(sorted(k for k in env if not k.startswith("SLURM_")))
    out = _run(["sbatch", "--parsable", f"--export={exported}", str(script)], env, where)
    job_id = out.strip().split(";")[0]
    if not job_id.isdigit():
        raise ExecutionError(f"sbatch answered {out.strip()!r}, not a job id", **where)
    if log is not None:
        log.info("job step %s try %s: Slurm job %s (%s)", ctx.job_step_id, try_number, job_id, script)
    return job_id


def cancel(job_id: str) -> None:
    subprocess.run(["scancel", job_id], capture_output=True, timeout=60, check=False)


def cancel_named(ctx: StepContext) -> None:
    """Cancel every job of the step by its name (when its id is no longer known)."""
    subprocess.run(["scancel", f"--name={job_name(ctx)}"], capture_output=True, timeout=60, check=False)


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


def settings_of(ctx: StepContext) -> SlurmSettings:
    if ctx.slurm is None:
        raise ExecutionError(
            f"facility {ctx.facility} (backend {ctx.backend}) has no Slurm settings",
            job_step_id=ctx.job_step_id,
            order=f"{ctx.mission}/{ctx.order_identifier}",
        )
    return ctx.slurm
