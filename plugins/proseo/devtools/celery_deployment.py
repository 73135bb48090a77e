"""Airflow with the CeleryExecutor on this machine's services: for e2e tests, benchmarks, trying.

:class:`CeleryDeployment` is a :class:`~proseo.devtools.standalone.Standalone` (same
throwaway home, admin password, free ports, REST client, clean stop) whose components run
as separate processes instead of ``airflow standalone``: scheduler, api-server,
dag-processor, triggerer and N ``airflow celery worker``, each serving its own queues (a
facility's queue is ``proseo-<mission>-<facility>``, see
:func:`proseo.planning.blueprint.facility_queue`; Airflow's own DAGs use ``default``).
The metadata database is a fresh PostgreSQL database (created at start, dropped at
stop), the broker a Redis database claimed for the instance (a claim key set with NX,
so two deployments never share one; flushed and released at stop), the Celery result
backend the metadata database.

Each component is started through standalone's launcher in its own session and process
group, and carries a marker of its own in its environment, so :meth:`kill_worker` /
:meth:`kill_scheduler` can SIGKILL exactly one component with everything it started (task
processes, the wrapper and the processor) and :meth:`restart_worker` /
:meth:`restart_scheduler` start it again, as a machine failing and coming back would.
Workers get names of their own (``PROSEO_WORKER_HOSTNAME`` through ``[core]
hostname_callable``), which Airflow records as the task instance's ``hostname``.

    with celery_deployment(home, workers=[["default", "proseo-s5p-a"], ["proseo-s5p-b"]]) as af:
        af.client.trigger("x")

    python -m proseo.devtools.celery_deployment --home DIR --worker default,q1 --worker q2
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proseo.devtools import hostname, services
from proseo.devtools.s3server import free_port
from proseo.devtools.standalone import (
    _LAUNCHER,
    COMPONENTS,
    Standalone,
    StandaloneError,
    StopResult,
    airflow_executable,
    ignore_signals,
    instance_pids,
    stop_on_signals,
    tail,
)

log = logging.getLogger(__name__)

SERVICES = ("scheduler", "api-server", "dag-processor", "triggerer")


@dataclass
class Component:
    """One long-running Airflow process of the deployment (with all it starts)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    log_offset: int = 0  # where the log stood at the latest start

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class CeleryDeployment(Standalone):
    """Scheduler, api-server, dag-processor, triggerer and Celery workers; see the module doc."""

    def __init__(
        self,
        home: str | os.PathLike[str],
        *,
        workers: Sequence[Sequence[str]] = (("default",),),
        concurrency: int = 2,
        postgres: str = services.POSTGRES,
        redis: str = services.REDIS,
        heartbeat_timeout_s: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(home, **kwargs)
        if not workers or any(not queues for queues in workers):
            raise ValueError("give at least one worker, each with at least one queue")
        self.worker_queues = [list(queues) for queues in workers]
        self.concurrency = concurrency
        self.postgres = postgres.rstrip("/")
        self.redis = redis.rstrip("/")
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.database = f"proseo_af_{self.instance[:16]}"
        self.redis_db: int | None = None
        self.components: dict[str, Component] = {}

    # ------------------------------------------------------------------ set-up

    @property
    def metadata_url(self) -> str:
        return f"{self.postgres}/{self.database}"

    def worker_name(self, index: int) -> str:
        return f"worker{index}"

    def env(self) -> dict[str, str]:
        out = super().env()
        settings = {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.metadata_url,
            # psycopg 3 serves async too (Airflow would derive asyncpg, which is not installed).
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": self.metadata_url,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": hostname.CALLABLE,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{self.metadata_url}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.concurrency),
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": "default",
            # Workers import proseo before their pool forks (see the module's docstring).
            "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "proseo.orchestration.celery_preload.CELERY_CONFIG",
            # One secret for every process: the scheduler signs the tokens the workers' tasks
            # present to the api-server's execution API.
            "AIRFLOW__API_AUTH__JWT_SECRET": f"jwt-{self.instance}",
            "AIRFLOW__API__SECRET_KEY": f"key-{self.instance}",
        }
        if self.redis_db is not None:
            settings["AIRFLOW__CELERY__BROKER_URL"] = f"{self.redis}/{self.redis_db}"
        if self.heartbeat_timeout_s is not None:
            settings["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"] = str(self.heartbeat_timeout_s)
            settings["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL"] = "5"
        out.update(settings)
        out.update(self.extra_env)
        return out

    def _release_redis_db(self) -> None:
        if self.redis_db is not None:
            services.release_redis_db(self.redis, self.redis_db, self.instance)
            self.redis_db = None

    def prepare(self) -> dict[str, str]:
        """Home, passwords, database, broker, ``airflow db migrate``; the components defined."""
        self.redis_db = services.claim_redis_db(self.redis, self.instance)
        services.create_database(self.postgres, self.database)
        env = super().prepare()
        migrate = self.home / "db-migrate.log"
        with migrate.open("ab") as sink:
            done = subprocess.run(
                [airflow_executable(), "db", "migrate"],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.home,
                timeout=600,
            )
        if done.returncode != 0:
            raise StandaloneError(f"airflow db migrate failed; last lines:\n{tail(migrate)}")
        airflow = airflow_executable()
        commands = {name: [airflow, name] for name in SERVICES}
        commands["api-server"] += ["--host", "127.0.0.1", "--port", str(self.port)]
        for i, queues in enumerate(self.worker_queues):
            name = self.worker_name(i)
            commands[name] = [
                airflow,
                "celery",
                "worker",
                "--queues",
                ",".join(queues),
                "--concurrency",
                str(self.concurrency),
                "--celery-hostname",
                f"{name}@{self.instance[:8]}",
            ]
        for name, argv in commands.items():
            own = {**env, "PROSEO_COMPONENT": f"{self.instance}:{name}"}
            if name.startswith("worker"):
                own[hostname.VARIABLE] = name
                own["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(free_port())
            self.components[name] = Component(name, argv, own, self.home / f"{name}.log")
        return env

    # ------------------------------------------------------------- start, stop

    def _launch(self, component: Component) -> None:
        main_thread = threading.current_thread() is threading.main_thread() and sys.platform == "linux"
        mode = "pdeathsig" if main_thread else "plain"
        command = [sys.executable, "-c", _LAUNCHER, mode, str(os.getpid()), *component.argv]
        component.log_offset = component.log_path.stat().st_size if component.log_path.exists() else 0
        with component.log_path.open("ab") as sink:
            component.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=component.env,
                cwd=self.home,
                start_new_session=True,
            )
        log.info("%s pid %s (log %s)", component.name, component.process.pid, component.log_path)

    def start(self) -> CeleryDeployment:
        """Start every component; wait until the API reports them healthy and the workers are ready."""
        if self.running:
            return self
        self._client = None
        self.started_at = time.monotonic()
        atexit.register(self.stop)
        try:
            self.prepare()
            for component in self.components.values():
                self._launch(component)
            self.wait_healthy(self.start_timeout)
            for i in range(len(self.worker_queues)):
                self.wait_worker_ready(i, self.start_timeout)
        except BaseException:
            self.stop()
            raise
        self.ready_seconds = time.monotonic() - self.started_at
        return self

    def _check_alive(self) -> None:
        for component in self.components.values():
            if component.process is not None and not component.alive:
                raise StandaloneError(
                    f"{component.name} exited with status {component.process.returncode}; "
                    f"last lines of {component.log_path}:\n{tail(component.log_path)}"
                )

    def wait_healthy(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            self._check_alive()
            last = self.health()
            if last and all((last.get(c) or {}).get("status") == "healthy" for c in COMPONENTS):
                return last
            time.sleep(0.5)
        raise StandaloneError(f"the Celery deployment on {self.url} was not healthy within {timeout:.0f} s")

    def wait_worker_ready(self, index: int, timeout: float = 120.0) -> None:
        """Until worker ``index`` logs Celery's "ready." since its latest start."""
        component = self.components[self.worker_name(index)]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with component.log_path.open("rb") as stream:
                stream.seek(component.log_offset)
                if b" ready." in stream.read():
                    return
            time.sleep(0.5)
        raise StandaloneError(
            f"{component.name} not ready within {timeout:.0f} s; last lines:\n{tail(component.log_path)}"
        )

    @property
    def running(self) -> bool:
        """The api-server is up (components may be down on purpose: see :meth:`kill`)."""
        api = self.components.get("api-server")
        return api is not None and api.alive

    @property
    def pid(self) -> int | None:
        scheduler = self.components.get("scheduler")
        return scheduler.process.pid if scheduler and scheduler.process else None

    def component_pids(self, name: str) -> list[int]:
        """Live pids of one component: its session, group, marked processes, descendants."""
        component = self.components[name]
        if component.process is None:
            return []
        component.process.poll()
        return instance_pids(component.process.pid, component.env["PROSEO_COMPONENT"])

    def processes(self) -> list[int]:
        found: set[int] = set()
        for component in self.components.values():
            if component.process is not None:
                component.process.poll()
                found.update(instance_pids(component.process.pid, self.marker))
        return sorted(found)

    def _signal_all(self, sig: signal.Signals) -> None:
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL, timeout: float = 30.0) -> list[int]:
        """Send ``sig`` to every process of one component and wait until they are gone."""
        pids = self.component_pids(name)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while self.component_pids(name) and time.monotonic() < deadline:
            time.sleep(0.2)
        if self.component_pids(name):
            raise StandaloneError(f"{name}: processes {self.component_pids(name)} survived {sig.name}")
        process = self.components[name].process
        if process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        return pids

    def restart(self, name: str) -> None:
        if self.components[name].alive:
            raise StandaloneError(f"{name} is still running")
        self._launch(self.components[name])

    def kill_worker(self, index: int, sig: signal.Signals = signal.SIGKILL) -> list[int]:
        return self.kill(self.worker_name(index), sig)

    def restart_worker(self, index: int, timeout: float = 120.0) -> None:
        self.restart(self.worker_name(index))
        self.wait_worker_ready(index, timeout)

    def kill_scheduler(self, sig: signal.Signals = signal.SIGKILL) -> list[int]:
        return self.kill("scheduler", sig)

    def restart_scheduler(self, timeout: float = 120.0) -> None:
        self.restart("scheduler")
        self.wait_healthy(timeout)

    def stop_phases(self) -> list[list[str]]:
        """The order components stop in: the scheduler, the workers, then everything else.

        With the scheduler gone nothing new is sent; a worker's warm shutdown lets its
        running tasks finish, and they can report their end because the api-server is
        still up. Signalled all at once, a running task finished but could not report,
        and Airflow's database kept it "running" (tests/e2e/test_celery_stop.py).
        """
        workers = [self.worker_name(i) for i in range(len(self.worker_queues))]
        rest = [name for name in self.components if name != "scheduler" and name not in workers]
        phases = [[n for n in phase if n in self.components] for phase in (["scheduler"], workers, rest)]
        return [phase for phase in phases if phase]

    def stop(self, keep_database: bool = False) -> StopResult:
        """SIGINT phase by phase (:meth:`stop_phases`); TERM, KILL to what is left after the
        timeout; then the metadata database is dropped (unless ``keep_database``: the caller
        reads it, then drops it) and the Redis database released."""
        atexit.unregister(self.stop)
        t0 = time.monotonic()
        result = StopResult(0.0)
        deadline = t0 + self.stop_timeout
        for phase in self.stop_phases():
            for name in phase:
                component = self.components[name]
                if component.alive:
                    assert component.process is not None
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(component.process.pid, signal.SIGINT)
            while any(self.component_pids(name) for name in phase) and time.monotonic() < deadline:
                time.sleep(0.2)
        if not self._wait_gone(max(0.0, deadline - time.monotonic())):
            for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 10.0)):
                result.escalated = sig.name
                left = self.processes()
                print(f"celery deployment: sent {sig.name} to {left}", file=sys.stderr, flush=True)
                self._signal_all(sig)
                if self._wait_gone(grace):
                    break
        for component in self.components.values():
            if component.process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    component.process.wait(timeout=5)
        result.leftovers = self.processes()
        if not keep_database:
            with contextlib.suppress(Exception):
                services.drop_database(self.postgres, self.database)
        with contextlib.suppress(Exception):
            self._release_redis_db()
        self.components = {}
        result.seconds = time.monotonic() - t0
        return result

    def __enter__(self) -> CeleryDeployment:
        return self.start()


@contextlib.contextmanager
def celery_deployment(home: str | os.PathLike[str], **kwargs: Any) -> Iterator[CeleryDeployment]:
    """``with celery_deployment(home, workers=...) as af:`` started and healthy, always stopped after."""
    instance = CeleryDeployment(home, **kwargs)
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run Airflow with the CeleryExecutor until Ctrl-C.")
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument(
        "--worker", action="append", help="queues of one worker, comma-separated (repeat per worker)"
    )
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--port", type=int)
    parser.add_argument("--catalog-url")
    args = parser.parse_args()
    stop_on_signals()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    workers = [w.split(",") for w in (args.worker or ["default"])]
    instance = CeleryDeployment(
        args.home, workers=workers, concurrency=args.concurrency, port=args.port, catalog_url=args.catalog_url
    )
    try:
        instance.start()
        print(
            f"Airflow {instance.url} (CeleryExecutor, broker {instance.redis}/{instance.redis_db}, "
            f"database {instance.database}, workers {workers}) ready in {instance.ready_seconds:.1f} s; "
            f"logs in {instance.home}; Ctrl-C stops it",
            flush=True,
        )
        while instance.running:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        ignore_signals()
        result = instance.stop()
    escalated = f" (escalated to {result.escalated})" if result.escalated else ""
    print(f"stopped in {result.seconds:.1f} s{escalated}", flush=True)


if __name__ == "__main__":
    main()
