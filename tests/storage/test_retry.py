"""Transient failures are retried (whole transfer, with backoff); permanent ones are not."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from fsspec.implementations.memory import MemoryFileSystem
from fsspec.registry import register_implementation

from proseo.errors import ChecksumMismatch, StorageError, StorageNotFound
from proseo.storage import Storage, is_transient


class FlakyFileSystem(MemoryFileSystem):
    """An in-memory filesystem whose first ``failures`` opens drop the connection."""

    protocol = "flaky"
    store: ClassVar[dict[str, Any]] = {}
    pseudo_dirs: ClassVar[list[str]] = [""]
    failures = 0
    opens = 0

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        type(self).opens += 1
        if type(self).failures > 0:
            type(self).failures -= 1
            raise ConnectionResetError(104, "Connection reset by peer")
        return super()._open(path, mode, **kwargs)


register_implementation("flaky", FlakyFileSystem, clobber=True)


@pytest.fixture
def flaky(tmp_path: Path) -> Storage:
    FlakyFileSystem.store.clear()
    FlakyFileSystem.failures = 0
    FlakyFileSystem.opens = 0
    (tmp_path / "in.bin").write_bytes(b"payload" * 1000)
    return Storage("flaky://bucket/root", max_retries=4, retry_backoff=0.001)


def test_transfer_succeeds_after_transient_failures(flaky: Storage, tmp_path: Path) -> None:
    FlakyFileSystem.failures = 2
    info = flaky.put_file(tmp_path / "in.bin", "a/in.bin")
    assert FlakyFileSystem.opens == 3 and info.size == 7000
    FlakyFileSystem.failures = 3
    assert flaky.get_file("a/in.bin", tmp_path / "back.bin").sha256 == info.sha256
    assert (tmp_path / "back.bin").read_bytes() == b"payload" * 1000


def test_gives_up_after_max_retries_with_the_cause(flaky: Storage, tmp_path: Path) -> None:
    FlakyFileSystem.failures = 100
    with pytest.raises(StorageError, match="gave up after 5 attempts: ConnectionResetError") as info:
        flaky.put_file(tmp_path / "in.bin", "a/in.bin")
    assert isinstance(info.value.__cause__, ConnectionResetError)
    assert FlakyFileSystem.opens == 5


def test_missing_objects_and_bad_checksums_are_not_retried(flaky: Storage, tmp_path: Path) -> None:
    with pytest.raises(StorageNotFound):
        flaky.get_file("missing.bin", tmp_path / "x")
    assert FlakyFileSystem.opens == 1
    flaky.put_file(tmp_path / "in.bin", "a/in.bin")
    FlakyFileSystem.opens = 0
    with pytest.raises(ChecksumMismatch):
        flaky.get_file("a/in.bin", tmp_path / "y", expected_size=1)
    assert FlakyFileSystem.opens == 1


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (_client_error("SlowDown", 503), True),
        (_client_error("InternalError", 500), True),
        (_client_error("RequestTimeout", 400), True),
        (_client_error("NoSuchKey", 404), False),
        (_client_error("AccessDenied", 403), False),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), True),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), True),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (FileNotFoundError("x"), False),
        (PermissionError("x"), False),
        (ChecksumMismatch("bad"), False),
        (ValueError("x"), False),
    ],
)
def test_classification(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_classification_follows_the_cause_chain() -> None:
    """s3fs re-raises botocore errors as OSError; the cause decides."""
    try:
        try:
            raise _client_error("ServiceUnavailable", 503)
        except ClientError as inner:
            raise OSError("S3 said no") from inner
    except OSError as outer:
        assert is_transient(outer)
