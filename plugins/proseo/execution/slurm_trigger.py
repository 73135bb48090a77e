"""The deferrable wait for a Slurm job: squeue, then sacct, then the manifest.

Runs in Airflow's triggerer (asyncio subprocesses, nothing blocks its event loop). It
is re-created from :meth:`SlurmJobTrigger.serialize` after a triggerer restart, so it
holds only plain values. A job gone from ``squeue`` (the controller forgets it
``MinJobAge`` seconds after its end) is not taken as completed: ``sacct`` must say how
it ended (where the cluster keeps accounting), or the wrapper's manifest must be on the
shared directory; otherwise the job is reported lost.

It never waits for good: a job pending for a reason that cannot clear by itself
(:data:`PERMANENT_REASONS`) is cancelled and reported ``UNSCHEDULABLE``; a job not ended
by ``deadline`` (the operator's time limit plus the facility's queue allowance) is
cancelled and reported ``WAIT_TIMEOUT``; ``unknown_polls`` failed ``squeue`` calls in a
row end the wait as ``UNREACHABLE`` with squeue's error text.

No event leaves before ``not_before`` (seconds since the epoch): Airflow's scheduler
(3.3, LocalExecutor) fails a task as "killed externally" when its trigger fires and the
task is queued again before the scheduler has read the executor's report that the
deferring process exited (both carry the same try number). A job that ends within
seconds of its submission waits that little longer instead of racing it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
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


#: Pending reasons that no time in the queue clears (squeue's ``%r``): the job's own
#: request conflicts with the partition, its constraints, account or QOS, or a
#: dependency that can no longer be met. Busy nodes, group limits, holds and down
#: nodes may clear; those wait until the deadline. ``PartitionConfig`` is the job asking
#: for more than the partition's nodes have (e.g. more CPUs than any node); Slurm also
#: shows it for a moment after submission before the precise reason, hence
#: :data:`SETTLE_S`.
PERMANENT_REASONS = frozenset(
    {
        "BadConstraints",
        "DependencyNeverSatisfied",
        "InvalidAccount",
        "InvalidQOS",
        "PartitionConfig",
        "PartitionTimeLimit",
    }
)
#: Per-job limits of the association or QOS (e.g. ``QOSMaxCpuPerJobLimit``,
#: ``AssocMaxWallDurationPerJobLimit``): the job itself asks for more than it may.
PER_JOB_LIMIT = re.compile(r"^(Assoc|QOS)Max\w*PerJob(Limit)?$")
#: A job must pend this long for permanent reasons (and two polls at least) before it
#: is given up: the reason Slurm sets at submission is refined within seconds.
SETTLE_S = 30.0


def permanent_reason(reason: str) -> bool:
    """Whether a pending job's reason can never clear while the job stays as it is."""
    return reason in PERMANENT_REASONS or bool(PER_JOB_LIMIT.match(reason))


class SlurmJobTrigger(BaseTrigger):
    """Waits for a Slurm job to end; one event ``{"job_id", "state", "source", "detail",
    "manifest_path", "time_limit_min"}`` (all the resumed task needs: ``dag.test()`` hands
    the task only the event, not the ``defer`` kwargs).

    ``source`` says who knew: ``squeue`` (the job is still in the controller's memory),
    ``sacct`` (accounting), ``manifest`` (neither knew, but the wrapper's manifest is on
    the shared directory; state ``UNKNOWN``) or ``lost`` (none of them, ``grace_polls``
    polls after the job left the queue). A failing ``squeue`` (controller down) is
    logged and polled again, up to ``unknown_polls`` times in a row. The trigger's own
    ends (job cancelled where there is one): ``UNSCHEDULABLE`` and ``WAIT_TIMEOUT``
    (source ``squeue``), ``UNREACHABLE`` (source ``squeue``, squeue's error as detail).
    ``deadline`` and ``not_before``: seconds since the epoch (absolute, so a restarted
    triggerer keeps them); no event is sent before ``not_before`` (module doc).
    """

    def __init__(
        self,
        job_id: str,
        manifest_path: str,
        poll_interval: float = 30.0,
        grace_polls: int = 3,
        time_limit_min: int | None = None,
        deadline: float | None = None,
        unknown_polls: int = 10,
        not_before: float | None = None,
    ):
        super().__init__()
        self.job_id = str(job_id)
        self.manifest_path = manifest_path
        self.poll_interval = float(poll_interval)
        self.grace_polls = int(grace_polls)
        self.time_limit_min = time_limit_min
        self.deadline = None if deadline is None else float(deadline)
        self.unknown_polls = max(1, int(unknown_polls))
        self.not_before = None if not_before is None else float(not_before)
        self._error = ""

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "manifest_path": self.manifest_path,
                "poll_interval": self.poll_interval,
                "grace_polls": self.grace_polls,
                "time_limit_min": self.time_limit_min,
                "deadline": self.deadline,
                "unknown_polls": self.unknown_polls,
                "not_before": self.not_before,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        async for event in self._watch():
            if self.not_before is not None and (delay := self.not_before - time.time()) > 0:
                await asyncio.sleep(delay)
            yield event
            return

    async def _watch(self) -> AsyncIterator[TriggerEvent]:
        missing, unknown, last = 0, 0, None
        stuck_since: float | None = None  # first poll of an unbroken run of permanent reasons
        while True:
            state = await self.queue_state()
            if state is not None and state != last:
                self.log.info("Slurm job %s: %s", self.job_id, state)
                last = state
            unknown = unknown + 1 if state == "?" else 0
            if unknown >= self.unknown_polls:
                await _command("scancel", self.job_id)
                detail = f"squeue failed {unknown} times in a row: {self._error}"
                yield self._event("UNREACHABLE", "squeue", detail)
                return
            word, _, reason = (state or "").partition("|")
            if state is not None and state != "?" and word not in ACTIVE:
                yield self._event(word, "squeue", state)
                return
            if word == "PENDING" and permanent_reason(reason):
                now = time.monotonic()
                stuck_since = now if stuck_since is None else stuck_since
                if now - stuck_since >= SETTLE_S:
                    await _command("scancel", self.job_id)
                    yield self._event("UNSCHEDULABLE", "squeue", f"pending for {reason}, which cannot clear")
                    return
            else:
                stuck_since = None
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
            elif self.deadline is not None and time.time() > self.deadline:
                await _command("scancel", self.job_id)
                when = datetime.fromtimestamp(self.deadline, UTC).isoformat(timespec="seconds")
                yield self._event("WAIT_TIMEOUT", "squeue", f"still {state} at the wait deadline {when}")
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
            self._error = f"({code}) {err.strip() or out.strip()}"
            self.log.warning("Slurm job %s: squeue failed %s", self.job_id, self._error)
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
