"""Run the processor: an argument list, its own process group, a log, and a time limit.

The processor is an arbitrary binary that may fork helpers, so it runs in a new
session (its own process group): at the time limit, or when it exits leaving helpers
behind, the whole group gets SIGTERM and, after a short grace, SIGKILL, and nothing
outlives the job. Its stdout and stderr go, in the order written, to one log file in
the working directory (kept in storage even when the job fails) and to our stderr,
so ``kubectl logs`` shows them too. Output is copied in chunks, never whole lines, so
a processor writing a gigabyte without a newline costs no memory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

#: How long the processor's group has to exit after SIGTERM before SIGKILL.
KILL_GRACE_S = 5.0
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class RunResult:
    """How the processor ended: its exit code (128+n for signal n), or None if we killed it."""

    exit_code: int | None
    timed_out: bool
    leftovers: bool  # processes of its group were still alive after it exited


def _group_alive(pgid: int) -> bool:
    """True while a live (not zombie) process is in the group.

    Killed helpers are reparented to init and stay zombies until it reaps them, which
    some container inits do slowly or never; they hold nothing, so they do not count.
    """
    try:
        entries = os.listdir("/proc")
    except OSError:  # no procfs: ask the kernel, zombies included
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat_file:
                fields = stat_file.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def terminate_group(proc: subprocess.Popen[bytes], grace_s: float = KILL_GRACE_S) -> None:
    """SIGTERM the process group of ``proc``; SIGKILL whatever is left after ``grace_s``."""
    pgid = proc.pid  # start_new_session: the leader's pid is the group's id
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace_s)
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _group_alive(pgid):
        _signal_group(pgid, signal.SIGKILL)
    proc.wait()


def _echo_writer() -> Callable[[bytes], None]:
    """Write processor output to our current stderr (bytes if it has a buffer, else text)."""
    stream = sys.stderr
    buffer = getattr(stream, "buffer", None)

    def write(chunk: bytes) -> None:
        with contextlib.suppress(Exception):  # a closed or odd stderr must not stop the log
            if buffer is not None:
                buffer.write(chunk)
                buffer.flush()
            else:
                stream.write(chunk.decode("utf-8", "replace"))
                stream.flush()

    return write


def _pump(source: IO[bytes], log: IO[bytes], echo: Callable[[bytes], None] | None) -> None:
    """Copy the processor's output to the log (and our stderr) as it arrives."""
    read = getattr(source, "read1", source.read)
    while chunk := read(_CHUNK):
        log.write(chunk)
        log.flush()
        if echo is not None:
            echo(chunk)


def run_processor(
    args: Sequence[str],
    *,
    cwd: Path,
    log_path: Path,
    max_run_time_s: float,
    grace_s: float = KILL_GRACE_S,
    echo: bool = True,
) -> RunResult:
    """Run ``args`` (never through a shell) in ``cwd``, appending its output to ``log_path``.

    With ``echo`` the output is also copied to our stderr.

    Raises OSError if the program cannot be started at all.
    """
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(args),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
        assert proc.stdout is not None
        pump = threading.Thread(
            target=_pump, args=(proc.stdout, log, _echo_writer() if echo else None), daemon=True
        )
        pump.start()
        timed_out = False
        try:
            proc.wait(timeout=max_run_time_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            terminate_group(proc, grace_s)
        except BaseException:  # interrupted: never leave the processor running
            terminate_group(proc, grace_s)
            raise
        finally:
            leftovers = not timed_out and _group_alive(proc.pid)
            if leftovers:
                terminate_group(proc, grace_s)
            pump.join(timeout=grace_s + 5)
            proc.stdout.close()
    code = proc.returncode
    if timed_out:
        return RunResult(None, True, leftovers)
    return RunResult(128 - code if code < 0 else code, False, leftovers)
