"""The process runner: argument lists, one log for both streams, the time limit, no orphans."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from proseo.wrapper.runner import run_processor

STUBBORN = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
open("pids.txt", "w").write(f"{os.getpid()} {child.pid}")
print("ignoring SIGTERM", flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def test_a_processor_ignoring_sigterm_is_killed_with_its_children(tmp_path: Path) -> None:
    began = time.monotonic()
    result = run_processor(
        [sys.executable, "-c", STUBBORN],
        cwd=tmp_path,
        log_path=tmp_path / "log",
        max_run_time_s=1.0,
        grace_s=0.5,
    )
    assert result.timed_out and result.exit_code is None
    assert time.monotonic() - began < 5
    pids = [int(p) for p in (tmp_path / "pids.txt").read_text().split()]
    deadline = time.monotonic() + 5
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in pids)
    assert "ignoring SIGTERM" in (tmp_path / "log").read_text()


def test_exit_codes_and_signals(tmp_path: Path) -> None:
    def run(code: str) -> int | None:
        return run_processor(
            [sys.executable, "-c", code], cwd=tmp_path, log_path=tmp_path / "log", max_run_time_s=30
        ).exit_code

    assert run("pass") == 0
    assert run("raise SystemExit(3)") == 3
    assert run("raise SystemExit(200)") == 200
    assert run("import os, signal; os.kill(os.getpid(), signal.SIGKILL)") == 128 + 9


def test_both_streams_go_to_one_log_in_chunks(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "sys.stdout.write('x' * 300000); sys.stdout.flush()\n"  # no newline at all
        "sys.stderr.write('on stderr\\n')\n"
    )
    result = run_processor(
        [sys.executable, "-c", code], cwd=tmp_path, log_path=tmp_path / "log", max_run_time_s=30, echo=False
    )
    assert result.exit_code == 0
    text = (tmp_path / "log").read_text()
    assert text == "x" * 300000 + "on stderr\n"


def test_arguments_are_never_interpreted_by_a_shell(tmp_path: Path) -> None:
    code = "import sys, pathlib; pathlib.Path('args.txt').write_text(repr(sys.argv[1:]))"
    result = run_processor(
        [sys.executable, "-c", code, "$(touch pwned); echo *"],
        cwd=tmp_path,
        log_path=tmp_path / "log",
        max_run_time_s=30,
    )
    assert result.exit_code == 0
    assert (tmp_path / "args.txt").read_text() == repr(["$(touch pwned); echo *"])
    assert not (tmp_path / "pwned").exists()
