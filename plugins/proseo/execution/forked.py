"""Starting the wrapper as a fork of the task process instead of a fresh interpreter.

Why: a fresh ``proseo-wrapper`` interpreter imports Python, pydantic, fsspec and the
wrapper again for every job step (about 0.4 s of CPU each on a 2-core machine, which
is most of what a no-op step costs beyond plain Airflow). The task process already
has all of it loaded (its worker pre-imported the task path before forking), so a
forked child starts the wrapper at once.

The child is made to look like an exec'd process, so the wrapper cannot tell the
difference and the parent treats it like a ``subprocess.Popen``:

* its own session and process group (the timeout and ``on_kill`` end the whole group,
  the processor included);
* stdin ``/dev/null``, stdout and stderr pipes to the parent;
* every other inherited descriptor is pointed at ``/dev/null`` rather than closed: the
  parent's objects (the Airflow supervisor's socket, a catalogue connection) still
  name those numbers, and closing them would let a new file reuse a number that a
  stray finaliser then closes or writes to. This way nothing the child does can reach
  the parent's connections, and the supervisor sees the task's socket close when the
  task process ends, not when the wrapper does;
* default signal handlers, fresh logging to the new stderr, the given directory,
  environment (deployment settings are read from it anew) and ``argv``; it leaves
  through ``os._exit`` so no exit handler of the parent (Airflow's) runs twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import IO

from proseo.settings import reset_settings

EXIT_CRASHED = 70  # EX_SOFTWARE: the wrapper raised instead of returning an exit code
_POLL_S = 0.02
_kept: list[object] = []  # child only: objects that must never be finalised (see _child)


class ForkedProcess:
    """The part of :class:`subprocess.Popen` the local backend uses, for a forked child."""

    def __init__(
        self,
        entry: Callable[[Sequence[str]], int],
        argv: Sequence[str],
        *,
        cwd: str | os.PathLike[str],
        env: Mapping[str, str],
    ) -> None:
        self.args = ["(forked)", *argv]
        self.returncode: int | None = None
        self._lock = threading.Lock()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            pid = os.fork()
        except OSError:  # no process left to make (EAGAIN, ENOMEM): leave no descriptor behind
            for fd in (out_r, out_w, err_r, err_w):
                os.close(fd)
            raise
        if pid == 0:  # pragma: no cover - runs in the child, which leaves through os._exit
            os._exit(_child(entry, list(argv), os.fspath(cwd), dict(env), out_w, err_w))
        os.close(out_w)
        os.close(err_w)
        self.pid = pid
        self.stdin = None
        self.stdout: IO[str] = open(out_r, encoding="utf-8", errors="replace")  # noqa: SIM115
        self.stderr: IO[str] = open(err_r, encoding="utf-8", errors="replace")  # noqa: SIM115

    def poll(self) -> int | None:
        # Never blocks on the lock: on_kill may call this from a signal handler that
        # interrupted this very method in the same thread (a blocking acquire would hang).
        if self.returncode is not None or not self._lock.acquire(blocking=False):
            return self.returncode
        try:
            if self.returncode is None:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode
        finally:
            self._lock.release()

    def wait(self, timeout: float | None = None) -> int:
        """Like ``Popen.wait``; polls, so a second thread may poll or wait meanwhile."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            time.sleep(_POLL_S)
        return code


def _child(
    entry: Callable[[Sequence[str]], int],
    argv: list[str],
    cwd: str,
    env: dict[str, str],
    out_w: int,
    err_w: int,
) -> int:  # pragma: no cover - runs in the forked child (tests observe it from outside)
    code = EXIT_CRASHED
    # The parent's standard streams stay referenced until os._exit: one of them may own
    # descriptor 1 or 2 (a task runner's replacement stream), and its finaliser would
    # close the pipe we are about to put there.
    _kept.extend((sys.stdin, sys.stdout, sys.stderr))
    try:
        os.setsid()
        # Above 2 first, so no dup2 below can overwrite a source it still needs.
        null, out, err = (
            fcntl.fcntl(fd, fcntl.F_DUPFD, 3) for fd in (os.open(os.devnull, os.O_RDWR), out_w, err_w)
        )
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        _blank_inherited_descriptors(null)
        for sig in signal.valid_signals():
            with contextlib.suppress(OSError, ValueError, RuntimeError):
                if callable(signal.getsignal(sig)) and sig != signal.SIGINT:
                    signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        _fresh_logging()
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        reset_settings()  # as an exec'd process would: settings from the child's environment
        sys.argv = list(argv)
        code = int(entry(argv))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        # Straight to descriptor 2: the failure may have come before sys.stderr was ours.
        with contextlib.suppress(Exception):
            os.write(2, traceback.format_exc().encode("utf-8", "replace"))
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
    return code


def _blank_inherited_descriptors(null: int) -> None:  # pragma: no cover - child only
    """Point every descriptor above 2 (but ``null``) at /dev/null; see the module doc."""
    for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else ():
        fd = int(name)
        if fd > 2 and fd != null:
            with contextlib.suppress(OSError):
                os.fstat(fd)  # the listing's own descriptor is gone by now
                os.dup2(null, fd, inheritable=False)


def _fresh_logging() -> None:  # pragma: no cover - child only
    """Drop the parent's handlers (Airflow's go to its supervisor), keep levels at default."""
    manager = logging.root.manager
    for logger in [logging.root, *(x for x in manager.loggerDict.values() if isinstance(x, logging.Logger))]:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.filters.clear()
    logging.root.setLevel(logging.WARNING)
