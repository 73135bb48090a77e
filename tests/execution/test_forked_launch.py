"""The forked launch of the wrapper looks to both sides like an exec'd process.

Each case forks a real child running a small entry function and observes it from the
parent: exit codes, pipes, its own process group, no hold on the parent's
descriptors, no use of the parent's log handlers or signal handlers.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from proseo.execution.forked import EXIT_CRASHED, ForkedProcess
from proseo.execution.local import launch_mode, terminate_group
from proseo.settings import SettingsError, get_settings, reset_settings


def _run(entry, argv: Sequence[str] = (), tmp: Path | None = None, env: dict[str, str] | None = None):
    process = ForkedProcess(entry, list(argv), cwd=tmp or Path.cwd(), env=env or dict(os.environ))
    out, err = process.stdout.read(), process.stderr.read()
    return process.wait(30), out, err


def test_exit_code_stdout_stderr_cwd_env_and_argv(tmp_path: Path) -> None:
    def entry(argv: Sequence[str]) -> int:
        print("manifest", os.getcwd(), os.environ.get("ONLY"), os.environ.get("HOME"), " ".join(argv))
        print("a log line", file=sys.stderr)
        return 3

    code, out, err = _run(entry, ["run", "x"], tmp_path, {"ONLY": "here"})
    assert code == 3
    assert out == f"manifest {tmp_path} here None run x\n"
    assert err == "a log line\n"


def test_the_child_reads_its_settings_from_its_own_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As an exec'd wrapper would: the parent's cached settings do not leak into the child."""
    monkeypatch.setenv("PROSEO_SCRATCH", str(tmp_path / "parent"))
    assert get_settings().scratch == tmp_path / "parent"

    def entry(argv: Sequence[str]) -> int:
        print(get_settings().scratch)
        return 0

    code, out, _ = _run(entry, tmp=tmp_path, env={"PROSEO_SCRATCH": str(tmp_path / "child")})
    assert (code, out) == (0, f"{tmp_path / 'child'}\n")


def test_system_exit_and_a_crash_become_exit_codes(tmp_path: Path) -> None:
    def leaves(argv: Sequence[str]) -> int:
        raise SystemExit(2)

    def crashes(argv: Sequence[str]) -> int:
        raise RuntimeError("boom in the wrapper")

    assert _run(leaves, tmp=tmp_path)[0] == 2
    code, _, err = _run(crashes, tmp=tmp_path)
    assert code == EXIT_CRASHED
    assert "RuntimeError: boom in the wrapper" in err and "Traceback" in err


def test_the_child_leads_its_own_process_group_and_is_ended_with_it(tmp_path: Path) -> None:
    def sleeps(argv: Sequence[str]) -> int:
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        print(grandchild.pid, flush=True)
        time.sleep(120)
        return 0

    process = ForkedProcess(sleeps, [], cwd=tmp_path, env=dict(os.environ))
    grandchild = int(process.stdout.readline())
    assert os.getpgid(process.pid) == process.pid == os.getsid(process.pid)
    assert os.getpgid(grandchild) == process.pid
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(0.2)
    started = time.monotonic()
    terminate_group(process, grace_s=5)
    assert process.returncode == -signal.SIGTERM
    assert time.monotonic() - started < 5
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)
    process.stdout.close()
    process.stderr.close()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_the_child_holds_none_of_the_parents_descriptors(tmp_path: Path) -> None:
    """The parent's socket closes for its peer when the parent closes it, child or not."""
    ours, peer = socket.socketpair()
    try:

        def waits(argv: Sequence[str]) -> int:
            print("started", flush=True)
            sys.stdin.read()  # /dev/null: returns at once
            time.sleep(30)
            return 0

        process = ForkedProcess(waits, [], cwd=tmp_path, env=dict(os.environ))
        assert process.stdout.readline() == "started\n"
        fds = Path(f"/proc/{process.pid}/fd")
        targets = {os.readlink(fd) for fd in fds.iterdir()}
        assert not [t for t in targets if t.startswith("socket:")], targets
        ours.close()
        peer.settimeout(5)
        assert peer.recv(1) == b""  # end of file: no other holder of our end
        terminate_group(process, grace_s=5)
    finally:
        peer.close()


def test_the_parents_log_handlers_and_signal_handlers_are_not_used(tmp_path: Path) -> None:
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Keep()
    logging.getLogger().addHandler(handler)
    previous = signal.signal(signal.SIGUSR1, lambda *_: None)
    try:

        def logs(argv: Sequence[str]) -> int:
            logging.getLogger("proseo.wrapper").warning("from the child")
            handled = signal.getsignal(signal.SIGUSR1)
            print(handled is signal.SIG_DFL, len(logging.getLogger().handlers))
            return 0

        code, out, err = _run(logs, tmp=tmp_path)
    finally:
        logging.getLogger().removeHandler(handler)
        signal.signal(signal.SIGUSR1, previous)
    assert code == 0
    assert out == "True 0\n"
    assert "from the child" in err  # logging's last resort writes to the child's stderr
    assert seen == []


def test_launch_mode_comes_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROSEO_WRAPPER_LAUNCH", raising=False)
    assert launch_mode() == "fork"
    monkeypatch.setenv("PROSEO_WRAPPER_LAUNCH", "EXEC")
    reset_settings()
    assert launch_mode() == "exec"
    monkeypatch.setenv("PROSEO_WRAPPER_LAUNCH", "spawn")
    reset_settings()
    with pytest.raises(SettingsError, match="PROSEO_WRAPPER_LAUNCH: Input should be 'fork' or 'exec'"):
        launch_mode()


def test_a_parent_stream_that_closes_its_descriptor_cannot_close_the_childs_pipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow's task runner replaces sys.stdout by a stream that owns descriptor 1; were
    it finalised in the child, it would close the manifest pipe put there."""
    parent = os.getpid()

    class OwnsDescriptorOne:
        def write(self, text: str) -> int:
            return len(text)

        def flush(self) -> None:
            pass

        def __del__(self) -> None:
            if os.getpid() != parent:
                os.close(1)

    monkeypatch.setattr(sys, "stdout", OwnsDescriptorOne())

    def prints(argv: Sequence[str]) -> int:
        import gc

        gc.collect()
        print("the manifest", flush=True)
        return 0

    code, out, err = _run(prints, tmp=tmp_path)
    assert (code, out) == (0, "the manifest\n"), err
