"""Launchers started in the background from a script stop on SIGINT and SIGTERM, through their cleanup.

``make demo`` (KEEP=1) and ``python -m proseo.devtools.standalone`` call
``stop_on_signals()``; a shell starts background jobs with SIGINT ignored, and without
it SIGINT did nothing and SIGTERM skipped the cleanup that stops Airflow.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = """
import sys, time
from pathlib import Path
from proseo.devtools.standalone import ignore_signals, stop_on_signals
marker = Path(sys.argv[1])
if sys.argv[2] == "install":
    stop_on_signals()
try:
    print("ready", flush=True)
    while True:
        time.sleep(0.1)
except KeyboardInterrupt:
    pass
finally:
    ignore_signals()
    marker.write_text("cleaned up")
"""


def _background(tmp_path: Path, mode: str) -> tuple[subprocess.Popen[str], int, Path]:
    """Like a script's ``launcher &``: bash starts it as a background job (SIGINT ignored)."""
    marker = tmp_path / f"marker-{mode}"
    shell = subprocess.Popen(
        ["bash", "-c", f'"{sys.executable}" -c "$0" "$1" "$2" & echo $!; wait', SCRIPT, str(marker), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert shell.stdout is not None
    pid = int(shell.stdout.readline())
    assert shell.stdout.readline().strip() == "ready"
    return shell, pid, marker


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_background_launcher_stops_through_its_cleanup(tmp_path: Path, sig: signal.Signals) -> None:
    shell, pid, marker = _background(tmp_path, "install")
    os.kill(pid, sig)
    assert shell.wait(timeout=10) == 0
    assert marker.read_text() == "cleaned up"


def test_without_it_sigint_is_ignored_in_the_background(tmp_path: Path) -> None:
    shell, pid, marker = _background(tmp_path, "plain")
    os.kill(pid, signal.SIGINT)
    time.sleep(1.0)
    assert shell.poll() is None and not marker.exists()  # still running: what the launchers fixed
    os.kill(pid, signal.SIGKILL)
    shell.wait(timeout=10)
