"""A real Airflow (``airflow standalone``) in a throwaway home: for benchmarks, demos and e2e tests.

:class:`Standalone` prepares an ``AIRFLOW_HOME`` (SQLite metadata database, LocalExecutor
with ``parallelism`` workers, no examples, DAGs not paused at creation, a short DAG-folder
refresh interval, the API on 127.0.0.1 and a free port, a fixed admin password through the
SimpleAuthManager passwords file, free ports for the log servers so two instances can run
side by side), starts ``airflow standalone`` in its own session and process group through a
launcher that restores SIGINT's default disposition (a background shell leaves SIGINT
ignored, and standalone only shuts its components down on KeyboardInterrupt), and waits
until ``GET /api/v2/monitor/health`` reports the metadatabase, scheduler, triggerer and
DAG processor healthy. :attr:`Standalone.client` is an :class:`AirflowClient` of its
REST API, logged in as the admin user.

:meth:`Standalone.stop` sends SIGINT to standalone and waits until every process it
started is gone: its session and process group (task processes move to process groups of
their own), every process carrying the instance's marker in its environment (the proseo
wrapper starts a session of its own), and their descendants. Only after ``stop_timeout``
does it escalate to SIGTERM, then SIGKILL, of all of them, and it says so (a warning on
stderr, and :attr:`StopResult.escalated`). If this
process dies first, the kernel sends standalone SIGINT (``PR_SET_PDEATHSIG``, when started
from the main thread on Linux), and an ``atexit`` hook stops it on a normal exit.

Nothing here imports Airflow: it runs the ``airflow`` executable of the current
environment as a subprocess.

    with standalone(home, dags_folder=dags, parallelism=4, catalog_url=url) as af:
        af.client.trigger("x")

    python -m proseo.devtools.standalone --home DIR [--dags DIR] [--port N]   # until Ctrl-C
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from proseo.api.airflow_client import AirflowApiError, AirflowClient
from proseo.devtools.s3server import free_port, venv_executable
from proseo.settings import get_settings

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[3]
DEFAULT_DAGS = REPO / "dags"
HOST = "127.0.0.1"
MARKER = "PROSEO_STANDALONE_INSTANCE"
COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")

# Runs as the launcher process: SIGINT back to its default (the caller may ignore it),
# optionally die with the parent, then become ``airflow standalone`` (same pid and group).
_LAUNCHER = """
import ctypes, os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
if sys.argv[1] == "pdeathsig":
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGINT))  # PR_SET_PDEATHSIG
    except Exception:
        pass
    if os.getppid() != int(sys.argv[2]):  # the parent is already gone
        sys.exit(1)
os.execv(sys.argv[3], sys.argv[3:])
"""


class StandaloneError(RuntimeError):
    """Airflow did not come up (or answered an API call with an error)."""


def airflow_executable() -> str:
    """``airflow`` next to the running interpreter (the venv), else on PATH."""
    try:
        return venv_executable("airflow")
    except RuntimeError as exc:
        raise StandaloneError(str(exc)) from None


def tail(path: Path, lines: int = 60) -> str:
    """The last ``lines`` lines of a log file ('' if there is none)."""
    try:
        with path.open("r", errors="replace") as stream:
            return "".join(deque(stream, maxlen=lines))
    except OSError:
        return ""


def _proc_table() -> dict[int, tuple[int, int, int]]:
    """Live (not zombie) processes: pid -> (ppid, process group, session), from /proc."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stream:
                fields = stream.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] not in (b"Z", b"X"):
            table[int(entry.name)] = (int(fields[1]), int(fields[2]), int(fields[3]))
    return table


def _marked(pid: int, needle: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as stream:
            return needle in b"\0" + stream.read() + b"\0"
    except OSError:  # gone, or another user's
        return False


def instance_pids(leader: int, marker: str) -> list[int]:
    """Live processes of an instance whose leader (session and group) is ``leader``.

    Members of its session or process group (Airflow's task processes move to process
    groups of their own, but stay in the session), processes whose environment carries
    ``marker`` (those that started a session of their own, like the proseo wrapper; but
    processes that retitle themselves overwrite their environment block, hence the
    session), and the descendants of all of these.
    """
    table = _proc_table()
    needle = b"\0" + marker.encode() + b"\0"
    me = os.getpid()
    found = {
        pid
        for pid, (_, group, session) in table.items()
        if pid != me and (session == leader or group == leader or _marked(pid, needle))
    }
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    todo = list(found)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found and child != me:
                found.add(child)
                todo.append(child)
    return sorted(found)


@dataclass
class StopResult:
    """How a stop went: seconds, and whether TERM/KILL had to follow SIGINT."""

    seconds: float
    escalated: str | None = None  # None, "SIGTERM" or "SIGKILL"
    leftovers: list[int] = field(default_factory=list)  # pids that survived even SIGKILL

    @property
    def clean(self) -> bool:
        return self.escalated is None and not self.leftovers


class Standalone:
    """One ``airflow standalone`` in its own home; see the module documentation."""

    def __init__(
        self,
        home: str | os.PathLike[str],
        *,
        dags_folder: str | os.PathLike[str] | None = None,
        port: int | None = None,
        parallelism: int = 4,
        username: str = "admin",
        password: str = "admin",
        catalog_url: str | None = None,
        refresh_interval: int = 5,
        min_file_process_interval: int | None = None,
        env: Mapping[str, str] | None = None,
        start_timeout: float = 240.0,
        stop_timeout: float = 60.0,
    ) -> None:
        self.home = Path(home).absolute()
        self.dags_folder = Path(dags_folder or DEFAULT_DAGS).absolute()
        self.port = port or free_port()
        self.parallelism = parallelism
        self.username = username
        self.password = password
        self.catalog_url = catalog_url
        self.refresh_interval = refresh_interval
        self.min_file_process_interval = min_file_process_interval
        self.extra_env = dict(env or {})
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.instance = uuid.uuid4().hex
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at: float | None = None
        self.ready_seconds: float | None = None
        self._client: AirflowClient | None = None

    # ------------------------------------------------------------------ set-up

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        """standalone's combined output (all four components, prefixed by name)."""
        return self.home / "standalone.log"

    @property
    def marker(self) -> str:
        return f"{MARKER}={self.instance}"

    def env(self) -> dict[str, str]:
        """The environment of every Airflow process of this instance (also for ``airflow`` CLI calls).

        Inherited ``AIRFLOW__*`` settings are dropped so the instance is isolated.
        """
        out = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__") and k != "AIRFLOW_HOME"}
        bin_dir = str(Path(sys.executable).parent)
        path = out.get("PATH", "")
        if bin_dir not in path.split(os.pathsep):
            out["PATH"] = os.pathsep.join(p for p in (bin_dir, path) if p)  # standalone runs "airflow"
        settings = {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.username}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__API__HOST": HOST,
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": str(self.refresh_interval),
            # The scheduler's and triggerer's log servers default to 8793/8794: two instances
            # on one machine would collide, so they get free ports too.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        }
        if self.min_file_process_interval is not None:
            settings["AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL"] = str(
                self.min_file_process_interval
            )
        if self.catalog_url is not None:
            settings["PROSEO_CATALOG_URL"] = self.catalog_url
        out.update(settings)
        out.update(self.extra_env)
        out[MARKER] = self.instance
        return out

    def prepare(self) -> dict[str, str]:
        """Create the home and the passwords file; writes ``standalone.env`` (shell exports)."""
        self.home.mkdir(parents=True, exist_ok=True)
        passwords = self.home / "passwords.json"
        passwords.write_text(json.dumps({self.username: self.password}) + "\n")
        passwords.chmod(0o600)
        env = self.env()
        keep = {k: v for k, v in env.items() if k.startswith(("AIRFLOW", "PROSEO_"))}
        lines = [f"export {k}={shlex.quote(v)}" for k, v in sorted(keep.items()) if k != MARKER]
        (self.home / "standalone.env").write_text("\n".join(lines) + "\n")
        return env

    # ------------------------------------------------------------- start, stop

    def start(self) -> Standalone:
        """Start standalone and wait until all components are healthy (StandaloneError if not)."""
        if self.running:
            return self
        env = self.prepare()
        main_thread = threading.current_thread() is threading.main_thread() and sys.platform == "linux"
        mode = "pdeathsig" if main_thread else "plain"  # PDEATHSIG follows the forking *thread*
        command = [
            sys.executable,
            "-c",
            _LAUNCHER,
            mode,
            str(os.getpid()),
            airflow_executable(),
            "standalone",
        ]
        self._client = None
        with self.log_path.open("ab") as sink:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.home,
                start_new_session=True,  # setsid: its own session and process group
            )
        self.started_at = time.monotonic()
        atexit.register(self.stop)
        log.info("airflow standalone pid %s on %s (home %s)", self.process.pid, self.url, self.home)
        try:
            self.wait_healthy(self.start_timeout)
        except BaseException:
            self.stop()
            raise
        self.ready_seconds = time.monotonic() - self.started_at
        return self

    def health(self) -> dict[str, Any] | None:
        """``GET /api/v2/monitor/health`` (no auth needed); None if the API does not answer."""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/monitor/health", timeout=5) as response:
                return dict(json.load(response))
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def wait_healthy(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            process = self.process
            if process is None or process.poll() is not None:
                code = None if process is None else process.returncode
                raise StandaloneError(
                    f"airflow standalone exited with status {code} while starting; "
                    f"last lines of {self.log_path}:\n{tail(self.log_path)}"
                )
            last = self.health()
            if last and all((last.get(c) or {}).get("status") == "healthy" for c in COMPONENTS):
                return last
            time.sleep(0.5)
        states = {c: (last.get(c) or {}).get("status") for c in COMPONENTS} if last else "no answer"
        raise StandaloneError(
            f"airflow standalone on {self.url} was not healthy within {timeout:.0f} s ({states}); "
            f"last lines of {self.log_path}:\n{tail(self.log_path)}"
        )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def processes(self) -> list[int]:
        """Live pids of this instance (see :func:`instance_pids`); [] when not started."""
        if self.process is None:
            return []
        self.process.poll()  # reap standalone itself once it has exited
        return instance_pids(self.process.pid, self.marker)

    def _gone(self) -> bool:
        return not self.processes()

    def _wait_gone(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._gone():
                return True
            time.sleep(0.2)
        return self._gone()

    def _components(self, name: bytes) -> list[int]:
        """Live children of ``airflow standalone`` whose command line names ``name``."""
        process = self.process
        if process is None:
            return []
        found = []
        for pid, (ppid, _, _) in _proc_table().items():
            if ppid != process.pid:
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as stream:
                    if name in stream.read():
                        found.append(pid)
            except OSError:
                continue
        return found

    def _stop_scheduler_first(self, seconds: float) -> None:
        """SIGTERM the scheduler and wait (up to ``seconds``) until it has gone.

        ``airflow standalone`` terminates every component at once on SIGINT. A task that
        is running then loses the api-server it reports its end to and retries for a
        minute or more, while the scheduler's LocalExecutor waits for it. Stopped first,
        the scheduler lets its running tasks end and report while the API still answers.
        """
        pids = self._components(b"scheduler")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + seconds
        while pids and time.monotonic() < deadline:
            table = _proc_table()
            pids = [pid for pid in pids if pid in table]
            time.sleep(0.2)
        if pids:
            log.warning("airflow scheduler %s still running %.0f s after SIGTERM", pids, seconds)

    def _signal_all(self, sig: signal.Signals) -> None:
        process = self.process
        assert process is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    def stop(self) -> StopResult:
        """SIGINT to standalone; wait until all of its processes are gone (TERM, KILL after timeouts)."""
        atexit.unregister(self.stop)
        process = self.process
        if process is None:
            return StopResult(0.0)
        t0 = time.monotonic()
        result = StopResult(0.0)
        if process.poll() is None:
            self._stop_scheduler_first(self.stop_timeout)
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGINT)
        if not self._wait_gone(self.stop_timeout):
            for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 10.0)):
                result.escalated = sig.name
                left = self.processes()
                log.warning(
                    "airflow standalone (pid %s) not gone %.0f s after SIGINT; sending %s to %s",
                    process.pid,
                    time.monotonic() - t0,
                    sig.name,
                    left,
                )
                print(
                    f"standalone: not all processes gone after SIGINT; sent {sig.name} to {left}",
                    file=sys.stderr,
                    flush=True,
                )
                self._signal_all(sig)
                if self._wait_gone(grace):
                    break
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
        result.leftovers = self.processes()
        if result.leftovers:
            log.error("airflow standalone: processes survived SIGKILL: %s", result.leftovers)
        result.seconds = time.monotonic() - t0
        self.process = None
        return result

    def __enter__(self) -> Standalone:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -------------------------------------------------------------------- REST

    @property
    def client(self) -> AirflowClient:
        """A client of this instance's REST API as the admin user (its token fetched once)."""
        if self._client is None:
            self._client = AirflowClient(self.url, username=self.username, password=self.password)
        return self._client

    def wait_for_run(
        self, dag_id: str, run_id: str | None = None, *, timeout: float = 3600.0, poll: float = 2.0
    ) -> dict[str, Any]:
        """``client.wait_for_run``, ending at once, with the log's tail, if standalone dies."""
        try:
            return self.client.wait_for_run(
                dag_id, run_id, timeout=timeout, poll=poll, alive=lambda: self.running
            )
        except AirflowApiError as exc:
            if self.running:
                raise
            raise StandaloneError(f"airflow standalone died; last lines:\n{tail(self.log_path)}") from exc


@contextlib.contextmanager
def standalone(home: str | os.PathLike[str], **kwargs: Any) -> Iterator[Standalone]:
    """``with standalone(home, ...) as af:`` a started, healthy Airflow, always stopped after."""
    instance = Standalone(home, **kwargs)
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


def _interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def stop_on_signals() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt in the main thread, however this started.

    A shell starts a background job with SIGINT ignored, and Python leaves an ignored
    SIGINT ignored (it installs its KeyboardInterrupt handler only over the default), so
    a launcher run from a script could not be stopped with SIGINT, and SIGTERM would end
    it without its ``finally`` (leaving Airflow running). Installed here, both stop it
    through its cleanup.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupted)


def ignore_signals() -> None:
    """While stopping: a second Ctrl-C must not cut the stop short (it escalates by itself)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run airflow standalone in its own home until Ctrl-C.")
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--dags", type=Path, default=DEFAULT_DAGS)
    parser.add_argument("--port", type=int)
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--password", default="admin")
    parser.add_argument("--catalog-url", default=get_settings().catalog_url)
    args = parser.parse_args()
    stop_on_signals()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    instance = Standalone(
        args.home,
        dags_folder=args.dags,
        port=args.port,
        parallelism=args.parallelism,
        password=args.password,
        catalog_url=args.catalog_url,
    )
    try:
        instance.start()
        print(
            f"Airflow {instance.url} (user {instance.username}, password {instance.password}) "
            f"ready in {instance.ready_seconds:.1f} s; log {instance.log_path}; "
            f"CLI: source {instance.home / 'standalone.env'}; Ctrl-C stops it",
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
