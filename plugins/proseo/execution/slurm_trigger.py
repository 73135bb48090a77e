"""The deferrable wait for a Slurm job: squeue, then sacct, then the manifest.

Runs in Airflow's triggerer (asyncio subprocesses, nothing blocks its event loop). It
is re-created from :meth:`SlurmJobTrigger.serialize` after a triggerer restart, so it
holds only plain values. A job gone from ``squeue`` (the controller forgets it
``MinJobAge`` seconds after its end) is not taken as completed: ``sacct`` must say how
it ended (where the cluster keeps accounting), or the wrapper's manifest must be on the
shared directory; otherwise the job is reported lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

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
