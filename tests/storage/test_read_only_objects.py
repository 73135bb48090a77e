"""Stored products are read-only, so a processor cannot change one through its staged input.

Job steps stage inputs on the same file system as hard links to the stored objects (one
inode): a processor that opened an input for writing would have changed the stored
product, and the catalogue's checksum with it. The tests run as root, whom file modes do
not stop, so the write is tried as the unprivileged user ``nobody`` (setpriv).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from proseo.storage import open_storage

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    """A folder the user nobody can reach (pytest's own tmp folder is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="proseo-ro-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _as_nobody_append(path: Path) -> subprocess.CompletedProcess[str]:
    code = "import sys; open(sys.argv[1], 'ab').write(b'changed')"
    return subprocess.run([*NOBODY, sys.executable, "-c", code, str(path)], capture_output=True, text=True)


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs util-linux setpriv to act as another user")
def test_a_stored_product_and_its_staged_link_cannot_be_written(world_readable_dir: Path) -> None:
    root = world_readable_dir / "store"
    storage = open_storage(f"file://{root}")
    info = storage.put_bytes(b"product bytes", "L1/2025/03/01/product.nc")
    stored = root / "L1/2025/03/01/product.nc"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o444
    for d in (root, *root.rglob("*")):
        if d.is_dir():
            d.chmod(0o755)
    work = world_readable_dir / "work"
    work.mkdir(mode=0o777)
    staged = work / "inputs" / "product.nc"
    storage.get_file("L1/2025/03/01/product.nc", str(staged), expected_sha256=info.sha256, link=True)
    staged.parent.chmod(0o777)
    assert os.stat(staged).st_ino == os.stat(stored).st_ino  # the zero-copy staging: one inode

    refused = _as_nobody_append(staged)
    assert refused.returncode != 0 and "PermissionError" in refused.stderr
    assert stored.read_bytes() == b"product bytes" and storage.checksum("L1/2025/03/01/product.nc") == info


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs util-linux setpriv to act as another user")
def test_logs_and_job_orders_stay_replaceable(world_readable_dir: Path) -> None:
    storage = open_storage(f"file://{world_readable_dir / 'store'}")
    storage.put_bytes(b"try 1", "logs/o1/7/processor.log", replace=True)
    storage.put_bytes(b"try 2", "logs/o1/7/processor.log", replace=True)
    log = world_readable_dir / "store" / "logs/o1/7/processor.log"
    assert log.read_bytes() == b"try 2" and stat.S_IMODE(log.stat().st_mode) & 0o200
