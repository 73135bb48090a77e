"""Storage fixtures: the same suite on a local folder and on moto's S3 server (real HTTP)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from proseo.devtools.s3server import MotoServer
from proseo.storage import Storage

from tests_storage_helpers import s3_client_for


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with MotoServer(log_file=log) as server:
        yield server


@pytest.fixture
def bucket(moto_s3: MotoServer) -> str:
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3_client_for(moto_s3).create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "file":
        return Storage(f"file://{tmp_path / 'store'}", block_size=5 * 2**20, retry_backoff=0.01)
    server = request.getfixturevalue("moto_s3")
    bucket = request.getfixturevalue("bucket")
    return Storage(
        f"s3://{bucket}/products", options=server.options(), block_size=5 * 2**20, retry_backoff=0.01
    )
