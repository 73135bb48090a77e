"""``python -m proseo.devtools.standalone`` started in the background by a script stops on SIGINT.

A shell starts a background job with SIGINT ignored, and Python keeps an ignored SIGINT
ignored; the launcher must install its own handling, or SIGINT does nothing and the
instance can only be killed (leaving Airflow behind). Started here exactly as a script
would (``bash -c '... &'``), it must stop on SIGINT with nothing of it left running.
Starts a real ``airflow standalone`` (about a minute).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from proseo.devtools.standalone import Standalone, instance_pids
from tests_slow_stop import run_until_task_runs, write_slow_dag

pytestmark = pytest.mark.e2e

SIGINT_BIT = 1 << (signal.SIGINT - 1)


def _signal_mask(pid: int, field: str) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{field}:\s*([0-9a-f]+)$", text, re.MULTILINE)[1], 16)  # type: ignore[index]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _of_home(home: Path) -> list[int]:
    """Live processes whose environment names this Airflow home (the instance's processes)."""
    needle = f"\0AIRFLOW_HOME={home}\0".encode()
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and _alive(int(entry.name)):
            with contextlib.suppress(OSError):
                if needle in b"\0" + Path(f"/proc/{entry.name}/environ").read_bytes():
                    found.append(int(entry.name))
    return found


def _wait(condition, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout:.0f} s; output:\n{log.read_text(errors='replace')[-3000:]}")


def test_started_in_the_background_it_stops_on_sigint(tmp_path: Path) -> None:
    home, dags, out, pidfile = tmp_path / "af", tmp_path / "dags", tmp_path / "out.log", tmp_path / "pid"
    dags.mkdir()
    command = (
        f"{sys.executable} -m proseo.devtools.standalone --home {home} --dags {dags} "
        f"--catalog-url sqlite:///{tmp_path / 'catalog.db'} > {out} 2>&1 & echo $! > {pidfile}"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    subprocess.run(["bash", "-c", command], check=True, env=env, timeout=30)
    pid = int(pidfile.read_text())
    leader: int | None = None
    try:
        # The shell handed it SIGINT ignored; once it runs, SIGINT is caught, not ignored.
        _wait(lambda: "airflow standalone pid" in out.read_text(), 60, "no start", out)
        assert _signal_mask(pid, "SigIgn") & SIGINT_BIT == 0, "SIGINT is still ignored"
        assert _signal_mask(pid, "SigCgt") & SIGINT_BIT, "SIGINT is not handled"
        leader = int(re.search(r"airflow standalone pid (\d+)", out.read_text())[1])  # type: ignore[index]
        _wait(lambda: " ready in " in out.read_text(), 300, "Airflow not ready", out)

        os.kill(pid, signal.SIGINT)
        _wait(lambda: not _alive(pid), 120, "still running after SIGINT", out)
        text = out.read_text()
        assert re.search(r"^stopped in [\d.]+ s$", text, re.MULTILINE), text[-2000:]
        assert "not all processes gone" not in text
        assert instance_pids(leader, "PROSEO_STANDALONE_INSTANCE=none") == []
        assert _of_home(home) == []
    finally:
        # Whatever failed above: nothing started here may outlive the test.
        for victim in [pid, *(instance_pids(leader, "-") if leader else []), *_of_home(home)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)


def test_a_stop_while_a_task_runs_lets_it_end_and_report(tmp_path: Path) -> None:
    """``airflow standalone`` alone terminates the api-server with the scheduler: the running
    task cannot report its end. Without the scheduler stopped first, this test saw the task
    left "running" in Airflow's database, and test_systematic's mid-stream stop escalated to
    SIGTERM (its tasks retried the API for a minute). Stopped scheduler first, the task
    ends, its success is recorded, and nothing needs more than SIGINT."""
    dags = write_slow_dag(tmp_path / "dags")
    af = Standalone(tmp_path / "af", dags_folder=dags, catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}")
    af.start()
    try:
        run_until_task_runs(af)
    finally:
        stopped = af.stop()
    assert stopped.clean, stopped
    with contextlib.closing(sqlite3.connect(tmp_path / "af" / "airflow.db")) as db:
        states = db.execute("SELECT state FROM task_instance WHERE dag_id = 'slow_stop'").fetchall()
    assert states == [("success",)]
