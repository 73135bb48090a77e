"""The local backend: the wrapper runs as a child process of the Airflow worker.

:func:`run_wrapper` is the whole run without Airflow (testable on its own): it writes
the job spec under ``<scratch_path>/<mission>/<order>/<job_step_id>/try-<n>/spec.json``,
runs ``proseo-wrapper run spec.json --workdir <that dir>/work`` in its own process
group, streams the wrapper's stderr into the log line by line and reads the manifest
from its stdout. The wrapper is a fork of the task process (no interpreter start-up or
imports per step, see :mod:`proseo.execution.forked`) unless ``PROSEO_WRAPPER_LAUNCH=exec``
or an explicit wrapper command asks for a fresh process.

:class:`JobStepOperator` is the processor task of local facilities: the step task of
:mod:`proseo.execution.steptask` around :func:`run_wrapper`; ``on_kill`` ends the
wrapper's whole process group.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

from airflow.sdk import BaseOperator, Context
from pydantic import ValidationError

from proseo.execution import steptask
from proseo.execution.errors import ExecutionError
from proseo.execution.forked import ForkedProcess
from proseo.execution.jobspec import STAGING_ALLOWANCE_S, StepContext
from proseo.settings import get_settings
from proseo.wrapper.spec import Manifest

WRAPPER = "proseo-wrapper"
EXIT_INVALID_SPEC = 2
KILL_GRACE_S = 10.0
_TAIL = 20  # stderr lines kept for error messages


class WrapperProcess(Protocol):
    """What :func:`run_wrapper` needs of the wrapper's process: a Popen or a ForkedProcess."""

    pid: int
    stdout: IO[str] | None
    stderr: IO[str] | None

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


def launch_mode() -> str:
    """``fork`` (the default where the OS can) or ``exec`` (``PROSEO_WRAPPER_LAUNCH``)."""
    return get_settings().wrapper_launch or ("fork" if hasattr(os, "fork") else "exec")


def find_wrapper() -> list[str]:
    """``proseo-wrapper`` next to this interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).parent / WRAPPER
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which(WRAPPER)
    if found:
        return [found]
    raise ExecutionError(f"{WRAPPER} is neither next to {sys.executable} nor on PATH")


def subprocess_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The wrapper's environment: ``env`` (default: ours) with this interpreter's ``bin``
    directory first on PATH, so the wrapper finds the processors installed beside it."""
    out = dict(os.environ if env is None else env)
    here = str(Path(sys.executable).parent)
    path = out.get("PATH", "")
    if here not in path.split(os.pathsep):
        out["PATH"] = os.pathsep.join(p for p in (here, path) if p)
    return out


def run_wrapper(
    ctx: StepContext,
    try_number: int,
    *,
    log: logging.Logger | logging.LoggerAdapter[Any] | Any | None = None,
    wrapper: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
    on_start: Callable[[WrapperProcess], None] | None = None,
) -> Manifest:
    """Run one job step through the wrapper; returns its manifest (whatever its status).

    ``timeout_s`` (default: the processor's max run time plus the staging allowance) is
    a safety net only: the wrapper enforces the processor's time limit itself.
    Raises :class:`ExecutionError` when the wrapper gives no valid manifest.
    """
    log = log or logging.getLogger(__name__)
    base = Path(ctx.scratch_dir(try_number))
    work = base / "work"
    if work.exists():  # a rerun of the same try starts clean
        shutil.rmtree(work)
    base.mkdir(parents=True, exist_ok=True)
    spec_path = base / "spec.json"
    spec_path.write_text(ctx.spec.model_dump_json(indent=2) + "\n")
    arguments = ["run", str(spec_path), "--workdir", str(work)]
    limit = timeout_s if timeout_s is not None else ctx.max_run_time_s + STAGING_ALLOWANCE_S
    process: WrapperProcess
    if wrapper is None and launch_mode() == "fork":
        from proseo.wrapper.main import main as wrapper_main  # pre-imported by the workers

        shown = " ".join(arguments)
        log.info("job step %s try %s: %s (forked) %s", ctx.job_step_id, try_number, WRAPPER, shown)
        process = ForkedProcess(wrapper_main, arguments, cwd=base, env=subprocess_env(env))
    else:
        command = [*(wrapper or find_wrapper()), *arguments]
        log.info("job step %s try %s: %s", ctx.job_step_id, try_number, " ".join(command))
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            cwd=base,
            env=subprocess_env(env),
            start_new_session=True,  # its own process group: on_kill and the timeout end all of it
        )
    if on_start is not None:
        on_start(process)
    assert process.stdout is not None and process.stderr is not None
    out_pipe = process.stdout
    stdout: list[str] = []
    # stdout (the manifest) is drained in a thread so neither pipe can fill up and block.
    reader = threading.Thread(target=lambda: stdout.append(out_pipe.read()), daemon=True)
    reader.start()
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        terminate_group(process)

    timer = threading.Timer(limit, expire)
    timer.daemon = True
    timer.start()
    tail: deque[str] = deque(maxlen=_TAIL)
    try:
        for line in process.stderr:
            line = line.rstrip("\n")
            tail.append(line)
            log.info("%s", line)
        returncode = process.wait()
    finally:
        timer.cancel()
        reader.join()
    text = "".join(stdout).strip()
    (base / "manifest.json").write_text(text + "\n")

    where = f"try {try_number}"
    last = "\n".join(tail)
    if timed_out.is_set():
        raise ExecutionError(
            f"the wrapper ran longer than {limit:.0f} s (max run time plus staging) and was killed; "
            f"processor log: {ctx.log_url}",
            job_step_id=ctx.job_step_id,
            order=f"{ctx.mission}/{ctx.order_identifier}",
        )
    try:
        manifest = Manifest.model_validate_json(text)
    except ValidationError as exc:
        kind = "refused the job spec" if returncode == EXIT_INVALID_SPEC else f"exited {returncode}"
        raise ExecutionError(
            f"{where}: the wrapper {kind} without a valid manifest on stdout "
            f"({exc.error_count()} problem(s): {exc.errors()[0]['msg']}); last stderr lines:\n{last}",
            job_step_id=ctx.job_step_id,
            order=f"{ctx.mission}/{ctx.order_identifier}",
        ) from exc
    if str(manifest.job_step_id) != str(ctx.job_step_id):
        raise ExecutionError(
            f"the wrapper's manifest is for job step {manifest.job_step_id}",
            job_step_id=ctx.job_step_id,
            order=f"{ctx.mission}/{ctx.order_identifier}",
        )
    if returncode not in (0, 1, EXIT_INVALID_SPEC):
        log.warning("%s: the wrapper exited %s with a %s manifest", where, returncode, manifest.status)
    return manifest


def terminate_group(process: WrapperProcess, grace_s: float = KILL_GRACE_S) -> None:
    """SIGTERM the process group, then SIGKILL it after ``grace_s``."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


class JobStepOperator(BaseOperator):
    """The processor task of a job step on a local facility (the factory maps it).

    Made with serialisable arguments only (``job_step_id`` is templated, so it can come
    from ``expand``); the step's context is read from the catalogue when the task runs.
    ``wrapper`` replaces the wrapper command (tests); by default the wrapper is forked.
    """

    backend = "local"
    template_fields: Sequence[str] = ("job_step_id",)
    ui_color = "#c7e9c0"

    def __init__(
        self,
        *,
        job_step_id: Any,
        mission: str,
        catalog_url: str | None = None,
        wrapper: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_step_id = job_step_id
        self.mission = mission
        self.catalog_url = catalog_url
        self.wrapper = list(wrapper) if wrapper else None
        self._process: WrapperProcess | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        step_id, ti = int(self.job_step_id), context["ti"]
        catalog = steptask.catalog_for(self.catalog_url)
        ctx = steptask.begin(
            catalog, step_id, task_id=ti.task_id, try_number=ti.try_number, backend=self.backend
        )
        manifest = run_wrapper(ctx, ti.try_number, log=self.log, wrapper=self.wrapper, on_start=self._started)
        return steptask.finish(
            catalog, step_id, manifest, mission=self.mission, context=context, log=self.log
        )

    def _started(self, process: WrapperProcess) -> None:
        self._process = process

    def on_kill(self) -> None:
        if self._process is not None:
            terminate_group(self._process)
