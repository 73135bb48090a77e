"""A single-node Slurm cluster on localhost for tests and the demo: Debian's daemons, own state.

:class:`SlurmCluster` writes a ``slurm.conf`` for one node (this host, its CPUs and memory)
and two partitions (``debug``, the default, and ``short``: one minute at most) into a
directory of its own, starts ``munged`` (its own key and socket, so no system service is
needed or touched), ``slurmctld`` and ``slurmd`` as child processes in the foreground,
waits until ``sinfo`` shows the node idle and stops them all again. Client commands
find the cluster through ``SLURM_CONF`` (:meth:`SlurmCluster.env`). It runs as root (the
daemons then need no service user); the packages come from
``tests/execution/install_slurm.sh``.

Accounting: there is no ``slurmdbd`` here (it needs MySQL/MariaDB), so
``AccountingStorageType=accounting_storage/none`` and ``sacct`` answers nothing useful.
A finished job stays visible to ``squeue --states=all`` and ``scontrol show job`` for
``MinJobAge`` seconds; ``jobcomp/filetxt`` also appends one line per finished job
(state, exit code) to ``jobcomp.log`` for whoever inspects a run. The backend's trigger
therefore reads ``squeue`` first, ``sacct`` when the job has left it and the manifest on
the shared directory last (:mod:`proseo.execution.slurm`).

    with SlurmCluster(tmp_dir) as cluster:
        os.environ.update(cluster.env())
        subprocess.run(["sbatch", ...])
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from proseo.devtools.s3server import free_port

DAEMONS = ("munged", "slurmctld", "slurmd")
PARTITION = "debug"
#: A second partition on the same node whose jobs may run one minute at most: a job
#: asking for more pends for good (``PartitionTimeLimit``; ``EnforcePartLimits=NO``,
#: Slurm's default, queues such a job instead of refusing it).
SHORT_PARTITION = "short"


def slurm_available() -> bool:
    """Whether the daemons and client commands are installed (``make slurm``)."""
    return all(shutil.which(c) for c in (*DAEMONS, "sbatch", "squeue", "sinfo", "scancel"))


def _memory_mb() -> int:
    with open("/proc/meminfo") as f:
        total_kb = next(int(line.split()[1]) for line in f if line.startswith("MemTotal:"))
    return total_kb // 1024


def _hostname() -> str:
    return socket.gethostname().split(".")[0]


class SlurmCluster:
    """munged + slurmctld + slurmd of one node, under ``base``; a context manager.

    ``cpus`` and ``memory_mb`` default to this machine's; larger values are accepted
    (``SlurmdParameters=config_overrides``), so processors that declare more cores than
    the host has can still be scheduled. ``kill_wait_s`` is how long Slurm waits between
    SIGTERM and SIGKILL when a job is cancelled or hits its time limit.
    """

    def __init__(
        self,
        base: str | os.PathLike[str],
        *,
        cpus: int | None = None,
        memory_mb: int | None = None,
        kill_wait_s: int = 5,
        min_job_age_s: int = 300,
        start_timeout_s: float = 60.0,
    ) -> None:
        self.base = Path(base).resolve()
        self.node = _hostname()
        self.cpus = cpus or os.cpu_count() or 1
        self.memory_mb = memory_mb or max(_memory_mb() - 512, 256)
        self.kill_wait_s = kill_wait_s
        self.min_job_age_s = min_job_age_s
        self.start_timeout_s = start_timeout_s
        self.conf = self.base / "slurm.conf"
        self.munge_socket = self.base / "munge" / "munge.socket"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    # --- configuration ----------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """What client commands (sbatch, squeue, ...) need to reach this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def slurm_conf(self) -> str:
        b = self.base
        ctld_port, d_port = free_port(), free_port()
        return "\n".join(
            [
                "ClusterName=proseo",
                f"SlurmctldHost={self.node}(127.0.0.1)",
                f"SlurmctldPort={ctld_port}",
                f"SlurmdPort={d_port}",
                "SlurmUser=root",
                "SlurmdUser=root",
                "AuthType=auth/munge",
                "CredType=cred/munge",
                f"AuthInfo=socket={self.munge_socket}",
                f"StateSaveLocation={b / 'state'}",
                f"SlurmdSpoolDir={b / 'spool'}",
                f"SlurmctldPidFile={b / 'slurmctld.pid'}",
                f"SlurmdPidFile={b / 'slurmd.pid'}",
                f"SlurmctldLogFile={b / 'slurmctld.log'}",
                f"SlurmdLogFile={b / 'slurmd.log'}",
                "SlurmctldDebug=info",
                "SlurmdDebug=info",
                "ProctrackType=proctrack/pgid",
                "TaskPlugin=task/none",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core_Memory",
                "SlurmdParameters=config_overrides",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                "JobCompType=jobcomp/filetxt",
                f"JobCompLoc={b / 'jobcomp.log'}",
                "MpiDefault=none",
                "ReturnToService=2",
                "SchedulerType=sched/backfill",
                f"KillWait={self.kill_wait_s}",
                f"MinJobAge={self.min_job_age_s}",
                "InactiveLimit=0",
                "OverTimeLimit=0",
                "SlurmctldTimeout=30",
                "SlurmdTimeout=30",
                f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} "
                f"RealMemory={self.memory_mb} State=UNKNOWN",
                f"PartitionName={PARTITION} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
                f"PartitionName={SHORT_PARTITION} Nodes={self.node} MaxTime=1 State=UP",
                "",
            ]
        )

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> SlurmCluster:
        """Write the configuration, start the daemons, wait for an idle node.

        Raises RuntimeError naming the daemon's log when something does not come up.
        """
        if not slurm_available():
            raise RuntimeError("Slurm is not installed (run: make slurm)")
        for sub in ("state", "spool", "munge"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        (self.base / "munge").chmod(0o700)
        key = self.base / "munge" / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self.conf.write_text(self.slurm_conf())
        try:
            self._spawn(
                "munged",
                [
                    "munged",
                    "--foreground",
                    "--force",
                    f"--socket={self.munge_socket}",
                    f"--key-file={key}",
                    f"--pid-file={self.base / 'munge' / 'munged.pid'}",
                    f"--seed-file={self.base / 'munge' / 'munged.seed'}",
                    f"--log-file={self.base / 'munged.log'}",
                ],
            )
            self._wait(lambda: self.munge_socket.exists(), "munged")
            self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)])
            self._spawn("slurmd", ["slurmd", "-D", "-f", str(self.conf), "-N", self.node])
            self._wait(self.node_idle, "slurmd")
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, name: str, command: list[str]) -> None:
        log = open(self.base / f"{name}.out", "ab")  # noqa: SIM115 - the child keeps its own descriptor
        try:
            self.processes[name] = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env()},
                start_new_session=True,
            )
        finally:
            log.close()

    def _wait(self, ready: Callable[[], bool], name: str) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            for daemon, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{daemon} exited with status {process.returncode} on start; "
                        f"see {self.base / (daemon + '.log')} and {self.base / (daemon + '.out')}"
                    )
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{name} did not get ready in {self.start_timeout_s:.0f} s; see {self.base}")

    def node_idle(self) -> bool:
        result = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%T"],
            capture_output=True,
            text=True,
            env={**os.environ, **self.env()},
            timeout=30,
        )
        states = set(result.stdout.split())  # one line per node and partition
        return result.returncode == 0 and states == {"idle"}

    def stop(self, timeout_s: float = 15.0) -> None:
        """Cancel what is left, then TERM the daemons (slurmd first), KILL what does not end."""
        if "slurmctld" in self.processes and self.processes["slurmctld"].poll() is None:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(
                    ["scancel", "--full", "--user=root"],
                    env={**os.environ, **self.env()},
                    capture_output=True,
                    timeout=10,
                )
        for name in ("slurmd", "slurmctld", "munged"):
            process = self.processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            process.terminate()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> SlurmCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
