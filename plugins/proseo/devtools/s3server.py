"""moto's S3 server on 127.0.0.1: a real HTTP endpoint for tests, benchmarks and the demo.

In-process mocking (``mock_aws``) patches botocore and never opens a socket, so it
cannot exercise what s3fs and aiohttp actually do on the wire (multipart uploads,
ranged GETs, connection handling). This runs the ``moto_server`` executable of the
current environment as a child process on a free port instead, waits until it
answers HTTP, and always stops it: terminate, then kill after a timeout; on Linux the
kernel also kills it if this process dies without cleaning up (``PR_SET_PDEATHSIG``).

    with MotoServer() as s3:
        storage = Storage("s3://bucket", options=s3.options())

``serial=True`` runs moto's application one request at a time. moto's threaded server
checks a conditional write (``If-None-Match: *``) before it stores the object, without
a lock, so two concurrent conditional writes can both pass; S3 decides them atomically.
A serial server is the faithful stand-in where concurrent writers of one key are tested.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO

#: moto accepts any credentials; these keep botocore from looking for real ones.
CREDENTIALS = {"key": "testing", "secret": "testing", "region": "us-east-1"}


def venv_executable(name: str) -> str:
    """A console script next to the running interpreter (the venv's bin), else on PATH."""
    beside = Path(sys.executable).with_name(name)
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found next to {sys.executable} or on PATH")
    return found


#: moto's own server, one request at a time (``moto_server`` hard-codes threaded=True).
_SERIAL_SERVER = """
import os, sys
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
host, port = sys.argv[1], int(sys.argv[2])
os.environ.setdefault("MOTO_PORT", str(port))
app = DomainDispatcherApplication(create_backend_app)
run_simple(host, port, app, threaded=False, request_handler=MotoRequestHandler)
"""


def moto_executable() -> str:
    try:
        return venv_executable("moto_server")
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}; install the dev extra (moto[server])") from None


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    """True if something accepts connections on (host, port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


class _ExitedEarly(RuntimeError):
    """The server process died while starting (e.g. its port was taken)."""


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class MotoServer:
    """A moto S3 server child process; use as a context manager or call start()/stop()."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        log_file: str | os.PathLike[str] | None = None,
        start_timeout: float = 30.0,
        stop_timeout: float = 5.0,
        serial: bool = False,
    ) -> None:
        self.host = host
        self.serial = serial
        self._fixed_port = port is not None
        self.port = port or free_port(host)
        self.log_file = log_file
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def options(self) -> dict[str, str]:
        """Storage options that point a proseo Storage (or s3fs) at this server."""
        return {"endpoint_url": self.endpoint_url, **CREDENTIALS}

    def env(self) -> dict[str, str]:
        """The same as AWS environment variables (for child processes, boto3, the CLI)."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": CREDENTIALS["key"],
            "AWS_SECRET_ACCESS_KEY": CREDENTIALS["secret"],
            "AWS_DEFAULT_REGION": CREDENTIALS["region"],
        }

    def start(self) -> MotoServer:
        """Start the server and wait until it answers; raises RuntimeError (naming the log) if not.

        With a port chosen by us, a port someone else took in the meantime is replaced by
        another free one (up to three times); an explicitly given port must be free.
        """
        if self.running:
            return self
        tries = 1 if self._fixed_port else 3
        for attempt in range(1, tries + 1):
            if port_in_use(self.host, self.port):
                if self._fixed_port:
                    raise RuntimeError(f"port {self.port} on {self.host} is already in use")
                self.port = free_port(self.host)
                continue
            self._spawn()
            try:
                self._wait_until_ready()
                return self
            except _ExitedEarly:
                self.stop()
                if attempt == tries:
                    raise
                self.port = free_port(self.host)
            except BaseException:
                self.stop()
                raise
        raise RuntimeError(f"found no free port for moto_server on {self.host}")

    def _spawn(self) -> None:
        out: IO[bytes] | int = subprocess.DEVNULL
        if self.log_file is not None:
            out = open(self.log_file, "ab")  # noqa: SIM115 - the child keeps its own descriptor
        try:
            command = (
                [sys.executable, "-c", _SERIAL_SERVER, self.host, str(self.port)]
                if self.serial
                else [moto_executable(), "-H", self.host, "-p", str(self.port)]
            )
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,  # a file or DEVNULL, never a pipe nobody reads
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if _main_thread() and sys.platform == "linux" else None,
            )
        finally:
            if not isinstance(out, int):
                out.close()
        atexit.register(self.stop)

    def _wait_until_ready(self) -> None:
        process = self.process
        assert process is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise _ExitedEarly(
                    f"moto_server exited with status {process.returncode} on start{self._log_hint()}"
                )
            try:
                with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=2):
                    pass
            except urllib.error.HTTPError:
                pass  # any HTTP answer means it is serving
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
                continue
            if process.poll() is None:  # the answer came from our process, not a squatter
                return
        raise RuntimeError(
            f"moto_server did not answer on {self.endpoint_url} "
            f"within {self.start_timeout} s{self._log_hint()}"
        )

    def _log_hint(self) -> str:
        return f" (see {self.log_file})" if self.log_file else ""

    def stop(self) -> None:
        """Terminate the server; kill it if it has not exited after ``stop_timeout`` seconds."""
        process, self.process = self.process, None
        atexit.unregister(self.stop)
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=self.stop_timeout)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _main_thread() -> bool:
    """PR_SET_PDEATHSIG fires when the *thread* that forked exits, so only use it from the main one."""
    return threading.current_thread() is threading.main_thread()
