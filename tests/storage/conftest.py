"""Storage fixtures: the same suite on a local folder and on moto's S3 server over real HTTP.

One moto server serves the whole session (it takes ~2 s to start); every test gets a
fresh bucket, so tests never see each other's objects.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest

from proseo.devtools.s3server import MotoServer
from proseo.storage import Storage

#: Small enough for quick multipart tests, and S3's minimum part size.
BLOCK = 5 * 2**20


@pytest.fixture
def s3_storage(moto_s3: MotoServer, bucket: str) -> Storage:
    return Storage(f"s3://{bucket}/products", options=moto_s3.options(), block_size=BLOCK, retry_backoff=0.01)


@pytest.fixture
def file_storage(tmp_path: Path) -> Storage:
    return Storage(f"file://{tmp_path}/store", block_size=BLOCK, retry_backoff=0.01)


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def storage(request: pytest.FixtureRequest) -> Storage:
    """The storage under test: a local folder, then a bucket on moto's server."""
    return request.getfixturevalue(f"{request.param}_storage")


@pytest.fixture
def make_file(tmp_path: Path) -> Callable[..., Path]:
    """make_file(name, size, seed=0) -> Path: deterministic pseudo-random content, written in pieces."""

    def make(name: str, size: int, seed: int = 0) -> Path:
        path = tmp_path / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        rng = random.Random(seed)
        with path.open("wb") as out:
            left = size
            while left:
                n = min(left, 2**20)
                out.write(rng.randbytes(n))
                left -= n
        return path

    return make


@pytest.fixture(scope="session")
def serial_moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto answering one request at a time: conditional writes atomic, as on S3 (see MotoServer)."""
    with MotoServer(log_file=tmp_path_factory.mktemp("moto") / "serial.log", serial=True) as server:
        yield server


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def race_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """Where concurrent writers of one key are tested: a folder, then a bucket on the serial moto."""
    if request.param == "file":
        return request.getfixturevalue("file_storage")
    server: MotoServer = request.getfixturevalue("serial_moto_s3")
    name = f"race-{uuid.uuid4().hex[:16]}"
    boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=server.options()["key"],
        aws_secret_access_key=server.options()["secret"],
        region_name=server.options()["region"],
    ).create_bucket(Bucket=name)
    return Storage(f"s3://{name}/products", options=server.options(), block_size=BLOCK, retry_backoff=0.01)
