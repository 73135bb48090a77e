"""Storage fixtures: the same suite on a local folder and on moto's S3 server over real HTTP.

One moto server serves the whole session (it takes ~2 s to start); every test gets a
fresh bucket, so tests never see each other's objects.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from proseo.devtools.s3server import MotoServer
from proseo.storage import Storage

#: Small enough for quick multipart tests, and S3's minimum part size.
BLOCK = 5 * 2**20


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with MotoServer(log_file=tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


@pytest.fixture(scope="session")
def s3_client(moto_s3: MotoServer) -> Any:
    """An independent client (boto3, not s3fs) to check what really is in the bucket."""
    opts = moto_s3.options()
    return boto3.client(
        "s3",
        endpoint_url=opts["endpoint_url"],
        aws_access_key_id=opts["key"],
        aws_secret_access_key=opts["secret"],
        region_name=opts["region"],
    )


@pytest.fixture
def bucket(s3_client: Any) -> str:
    name = f"test-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name)
    return name


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
