"""The moto launcher: a real server that answers, and that is gone when we are done with it."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from proseo.devtools.s3server import MotoServer, moto_executable, port_in_use

pytestmark = pytest.mark.s3


def _alive(pid: int) -> bool:
    """True if the process exists and is not a zombie (Linux /proc)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_the_session_server_answers_s3(moto_s3: MotoServer, s3_client: Any) -> None:
    assert moto_s3.running and moto_s3.endpoint_url.startswith("http://127.0.0.1:")
    assert port_in_use("127.0.0.1", moto_s3.port)
    with urllib.request.urlopen(f"{moto_s3.endpoint_url}/moto-api/", timeout=5) as response:
        assert response.status == 200
    assert Path(moto_executable()).is_file()
    assert "Buckets" in s3_client.list_buckets()
    assert moto_s3.env()["AWS_ENDPOINT_URL_S3"] == moto_s3.endpoint_url


def test_a_server_stops_with_its_context_and_leaves_no_process(tmp_path: Path) -> None:
    log = tmp_path / "moto.log"
    with MotoServer(log_file=log, stop_timeout=5) as server:
        process = server.process
        assert process is not None and server.running and port_in_use("127.0.0.1", server.port)
    assert process.poll() is not None  # reaped, not an orphan or a zombie
    assert not server.running and not port_in_use("127.0.0.1", server.port)
    assert b"GET /moto-api/" in log.read_bytes()  # its output went to the file, not to a pipe
    server.stop()  # idempotent


def test_a_taken_port_is_refused_not_mistaken_for_our_server(moto_s3: MotoServer) -> None:
    second = MotoServer(port=moto_s3.port, start_timeout=10)
    with pytest.raises(RuntimeError, match=f"port {moto_s3.port} on 127.0.0.1 is already in use"):
        second.start()
    assert second.process is None and moto_s3.running


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux only")
def test_the_server_dies_with_a_parent_that_was_killed() -> None:
    """Even without a chance to clean up (SIGKILL), the parent leaves no server behind."""
    code = (
        "import time\n"
        "from proseo.devtools.s3server import MotoServer\n"
        "server = MotoServer().start()\n"
        "print(server.process.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        assert _alive(pid)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)
