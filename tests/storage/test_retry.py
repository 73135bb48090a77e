"""Transient failures are retried (the whole transfer, with backoff); permanent ones are not.

The behaviour is tested through a real fsspec filesystem (fsspec's in-memory one,
registered under a test protocol) whose first N opens or reads fail; the
classification is tested on the exceptions s3fs, botocore and aiohttp really raise.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiohttp.client_exceptions import ClientPayloadError, ServerDisconnectedError
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
    SSLError,
)
from fsspec.implementations.memory import MemoryFileSystem
from fsspec.registry import register_implementation
from s3fs.errors import translate_boto_error

from proseo.errors import ChecksumMismatch, StorageError, StorageNotFound
from proseo.storage import Storage, is_transient
from proseo.storage.retry import GaveUp, with_retries

PAYLOAD = b"0123456789abcdef" * 4096  # 64 KiB


class FlakyFS(MemoryFileSystem):
    """fsspec's memory filesystem, except that the first ``failures`` opens (or reads) fail."""

    protocol = "flaky"
    store: ClassVar[dict[str, Any]] = {}
    pseudo_dirs: ClassVar[list[str]] = [""]
    failures = 0
    error: Callable[[], BaseException] = staticmethod(lambda: ConnectionResetError(errno.ECONNRESET, "reset"))
    fail_mid_read = False  # fail after the first chunk of a read instead of at open
    opens = 0

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        cls = type(self)
        cls.opens += 1
        if cls.failures and not (cls.fail_mid_read and "r" in mode):
            cls.failures -= 1
            raise cls.error()
        f = super()._open(path, mode, **kwargs)
        if cls.failures and cls.fail_mid_read and "r" in mode:
            cls.failures -= 1
            return _BreaksAfterFirstRead(f, cls.error())
        return f


class _BreaksAfterFirstRead:
    """A read stream that delivers 4 KiB, then fails (memory files are shared, so wrap, don't patch)."""

    def __init__(self, f: Any, error: BaseException) -> None:
        self._f, self._error, self._reads = f, error, 0

    def read(self, n: int = -1) -> bytes:
        self._reads += 1
        if self._reads > 1:
            raise self._error
        return bytes(self._f.read(4096))

    def close(self) -> None:
        pass

    def __enter__(self) -> _BreaksAfterFirstRead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


register_implementation("flaky", FlakyFS, clobber=True)


@pytest.fixture
def flaky(tmp_path: Path) -> Storage:
    FlakyFS.store.clear()
    FlakyFS.failures = FlakyFS.opens = 0
    FlakyFS.fail_mid_read = False
    FlakyFS.error = staticmethod(lambda: ConnectionResetError(errno.ECONNRESET, "reset"))
    (tmp_path / "in.bin").write_bytes(PAYLOAD)
    return Storage("flaky://bucket/root", max_retries=4, retry_backoff=0.001)


def test_success_after_two_transient_failures(flaky: Storage, tmp_path: Path) -> None:
    FlakyFS.failures = 2
    info = flaky.put_file(tmp_path / "in.bin", "a/in.bin")
    assert FlakyFS.opens == 3 and info.size == len(PAYLOAD)
    assert list(flaky.list()) == ["a/in.bin"]  # the failed attempts left no temporary objects


def test_a_transfer_broken_mid_stream_restarts_and_takes_its_progress_back(
    flaky: Storage, tmp_path: Path
) -> None:
    flaky.put_file(tmp_path / "in.bin", "a/in.bin")
    FlakyFS.opens, FlakyFS.failures, FlakyFS.fail_mid_read = 0, 2, True
    FlakyFS.error = staticmethod(lambda: TimeoutError("read timed out"))
    reported: list[int] = []

    info = flaky.get_file(
        "a/in.bin", tmp_path / "back.bin", expected_size=len(PAYLOAD), progress=reported.append
    )

    assert FlakyFS.opens == 3 and (tmp_path / "back.bin").read_bytes() == PAYLOAD
    assert reported.count(-4096) == 2  # each failed attempt's 4 KiB was taken back ...
    assert sum(reported) == len(PAYLOAD) == info.size  # ... so the bar ends exactly at the size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["back.bin", "in.bin"]  # no temporary leftovers


def test_gives_up_after_max_retries_and_chains_the_last_error(flaky: Storage, tmp_path: Path) -> None:
    FlakyFS.failures = 100
    with pytest.raises(StorageError) as caught:
        flaky.put_file(tmp_path / "in.bin", "a/in.bin")
    assert FlakyFS.opens == 5  # 1 + max_retries
    assert "gave up after 5 attempts: ConnectionResetError" in str(caught.value)
    assert caught.value.url == "flaky://bucket/root/a/in.bin"
    assert isinstance(caught.value.__cause__, ConnectionResetError)
    assert not flaky.exists("a/in.bin")


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        (FileNotFoundError, StorageNotFound),
        (PermissionError, StorageError),
        (IsADirectoryError, StorageNotFound),
    ],
)
def test_permanent_errors_are_not_retried(
    flaky: Storage, tmp_path: Path, error: type[OSError], raised: type[StorageError]
) -> None:
    flaky.put_file(tmp_path / "in.bin", "a/in.bin")
    FlakyFS.opens, FlakyFS.failures = 0, 3
    FlakyFS.error = staticmethod(lambda: error("nope"))
    with pytest.raises(raised) as caught:
        flaky.get_file("a/in.bin", tmp_path / "x.bin")
    assert FlakyFS.opens == 1 and type(caught.value) is raised
    assert isinstance(caught.value.__cause__, error)


def test_checksum_mismatches_and_missing_objects_are_not_retried(flaky: Storage, tmp_path: Path) -> None:
    flaky.put_file(tmp_path / "in.bin", "a/in.bin")
    FlakyFS.opens = 0
    with pytest.raises(ChecksumMismatch):
        flaky.get_file("a/in.bin", tmp_path / "y.bin", expected_md5="0" * 32)
    with pytest.raises(StorageNotFound):
        flaky.get_file("missing.bin", tmp_path / "z.bin")
    assert FlakyFS.opens == 2


def test_local_source_errors_are_the_callers_and_not_retried(flaky: Storage, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        flaky.put_file(tmp_path / "does-not-exist.bin", "a.bin")
    assert FlakyFS.opens == 0


def test_backoff_is_exponential_with_jitter() -> None:
    delays: list[float] = []
    calls = iter([ConnectionResetError(), TimeoutError(), ConnectionResetError(), "done"])

    def action() -> str:
        outcome = next(calls)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    assert with_retries(action, what="x", max_retries=5, backoff=1.0, sleep=delays.append) == "done"
    assert len(delays) == 3
    for attempt, delay in enumerate(delays, start=1):
        assert 0.5 * 2 ** (attempt - 1) <= delay <= 1.5 * 2 ** (attempt - 1)

    def always_times_out() -> str:
        raise TimeoutError("t")

    with pytest.raises(GaveUp) as caught:
        with_retries(always_times_out, what="x", max_retries=0, backoff=1.0, sleep=delays.append)
    assert caught.value.attempts == 1 and isinstance(caught.value.__cause__, TimeoutError)


def _from_s3(code: str, status: int) -> BaseException:
    """What s3fs raises for an S3 error response: translate_boto_error is what its _call_s3 uses."""
    error = ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetObject",
    )
    return translate_boto_error(error)


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        pytest.param(_from_s3("SlowDown", 503), True, id="s3-SlowDown"),
        pytest.param(_from_s3("ServiceUnavailable", 503), True, id="s3-ServiceUnavailable"),
        pytest.param(_from_s3("InternalError", 500), True, id="s3-InternalError"),
        pytest.param(_from_s3("RequestTimeout", 400), True, id="s3-RequestTimeout"),
        pytest.param(_from_s3("BadGateway", 502), True, id="s3-502"),
        pytest.param(_from_s3("NoSuchKey", 404), False, id="s3-NoSuchKey"),
        pytest.param(_from_s3("AccessDenied", 403), False, id="s3-AccessDenied"),
        pytest.param(_from_s3("RequestTimeTooSkewed", 403), False, id="s3-clock-skew"),
        pytest.param(_from_s3("InvalidArgument", 400), False, id="s3-InvalidArgument"),
        pytest.param(EndpointConnectionError(endpoint_url="http://x"), True, id="EndpointConnectionError"),
        pytest.param(ConnectTimeoutError(endpoint_url="http://x"), True, id="ConnectTimeoutError"),
        pytest.param(ReadTimeoutError(endpoint_url="http://x"), True, id="ReadTimeoutError"),
        pytest.param(ServerDisconnectedError(), True, id="aiohttp-ServerDisconnected"),
        pytest.param(ClientPayloadError("truncated"), True, id="aiohttp-ClientPayloadError"),
        pytest.param(ConnectionResetError(), True, id="ConnectionResetError"),
        pytest.param(TimeoutError(), True, id="TimeoutError"),
        pytest.param(OSError(errno.ENETUNREACH, "unreachable"), True, id="ENETUNREACH"),
        pytest.param(SSLError(endpoint_url="http://x", error="bad cert"), False, id="SSLError"),
        pytest.param(NoCredentialsError(), False, id="NoCredentialsError"),
        pytest.param(FileNotFoundError("x"), False, id="FileNotFoundError"),
        pytest.param(PermissionError("x"), False, id="PermissionError"),
        pytest.param(ChecksumMismatch("bad", url="s3://b/k"), False, id="ChecksumMismatch"),
        pytest.param(OSError(errno.EIO, "I/O error"), False, id="plain-EIO"),
        pytest.param(ValueError("x"), False, id="ValueError"),
    ],
)
def test_classification_of_what_the_libraries_raise(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_a_permanent_error_wins_over_a_transient_cause() -> None:
    """A 404 found while retrying a timeout is still a 404."""
    try:
        try:
            raise TimeoutError("first")
        except TimeoutError:
            raise FileNotFoundError("then gone") from None
    except FileNotFoundError as exc:
        assert not is_transient(exc)
    outer = OSError(errno.EIO, "wrapped")
    outer.__cause__ = TimeoutError("inner")
    assert is_transient(outer)
